// Package mountinfo holds what every reader of /proc/<pid>/mountinfo
// (proc(5)) needs and nothing more, so that the runtime, the shim and the
// daemon, which parse the lines they need each their own way, agree on
// the one subtle part: the escaping of paths.
package mountinfo

import "strings"

// Unescape undoes the kernel's octal escapes in a mountinfo path field
// (\040 for a space, \011 tab, \012 newline, \134 backslash). A backslash
// not followed by three octal digits of a byte value is kept as it is.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if c, ok := octalByte(s[i+1 : i+4]); ok {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// octalByte reads three octal digits whose value fits a byte.
func octalByte(s string) (byte, bool) {
	v := 0
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return 0, false
		}
		v = v*8 + int(s[i]-'0')
	}
	if v > 0xff {
		return 0, false
	}
	return byte(v), true
}
