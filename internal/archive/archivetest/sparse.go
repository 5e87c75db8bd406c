package archivetest

import (
	"fmt"
	"strconv"
)

// SparseTar is a tar stream of one sparse regular file, name, of size
// bytes: data at offset 0, then a hole. Go's archive/tar reads sparse files
// (filling the holes with zeros) but cannot write them. pax picks GNU's PAX
// format 1.0 (a "GNUSparseFile.0/" entry whose GNU.sparse.* records give
// the real name and size; size may be anything) over the old GNU format
// (type 'S', the map in the header; size below 8 GiB).
func SparseTar(name string, data []byte, size int64, pax bool) []byte {
	var out []byte
	if pax {
		records := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
			paxRecord("GNU.sparse.name", name) + paxRecord("GNU.sparse.realsize", strconv.FormatInt(size, 10))
		out = append(out, header("PaxHeaders.0/"+name, 'x', int64(len(records)), false, nil)...)
		out = append(out, pad([]byte(records))...)
		// The data starts with the map: entries, then offset and length of each.
		body := append(pad(fmt.Appendf(nil, "1\n0\n%d\n", len(data))), data...)
		out = append(out, header("GNUSparseFile.0/"+name, '0', int64(len(body)), false, nil)...)
		out = append(out, pad(body)...)
	} else {
		out = append(out, header(name, 'S', int64(len(data)), true, func(b []byte) {
			octal(b[386:398], 0)                // first map entry: offset
			octal(b[398:410], int64(len(data))) // and length
			octal(b[483:495], size)             // real size
		})...)
		out = append(out, pad(data)...)
	}
	return append(out, make([]byte, 1024)...) // end of archive
}

// header is one 512-byte tar header block, ustar or (gnu) GNU, which edit
// may change before the checksum is set.
func header(name string, typ byte, size int64, gnu bool, edit func([]byte)) []byte {
	b := make([]byte, 512)
	copy(b, name)
	octal(b[100:108], 0o644)
	octal(b[108:116], 0)
	octal(b[116:124], 0)
	octal(b[124:136], size)
	octal(b[136:148], 1700000000)
	b[156] = typ
	if gnu {
		copy(b[257:], "ustar  \x00")
	} else {
		copy(b[257:], "ustar\x0000")
	}
	if edit != nil {
		edit(b)
	}
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// octal writes v in the numeric field f: octal digits, then a NUL.
func octal(f []byte, v int64) {
	copy(f, fmt.Sprintf("%0*o\x00", len(f)-1, v))
}

// paxRecord is "<length> key=value\n", length counting itself.
func paxRecord(key, value string) string {
	rest := " " + key + "=" + value + "\n"
	n := len(rest) + 1
	for n != len(rest)+len(strconv.Itoa(n)) {
		n = len(rest) + len(strconv.Itoa(n))
	}
	return strconv.Itoa(n) + rest
}

func pad(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}
