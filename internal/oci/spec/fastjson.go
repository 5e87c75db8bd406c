package spec

import (
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

//go:generate go run ./internal/specjsongen -o specjson_gen.go

// Why a second JSON decoder: every `gantry-oci create` and `run` is a fresh
// process, and the first json.Unmarshal into specs.Spec builds
// encoding/json's reflection caches for the ~100 types reachable from it,
// which costs about 1 ms of each container start (a warm decode of the same
// config takes under 0.1 ms). decodeFast decodes config.json with plain code
// generated from the specs-go types (specjson_gen.go, by
// internal/specjsongen), so a start pays only for the bytes it reads: in
// `gantry-oci run` the test bundle's config decodes in ~0.05 ms instead of
// ~1 ms. Regenerate with `go generate ./internal/oci/spec/` after a
// runtime-spec upgrade (TestSpecJSONGenUpToDate fails until then); the
// generator refuses types it cannot decode with certainty.
//
// The fast decoder is only ever allowed to be right or to give up: whenever
// encoding/json's behaviour is subtle it reports ok=false and decode runs
// encoding/json as before, so the result and every error message are what
// encoding/json gives. It gives up on: a key that is not exactly a field's
// JSON name (encoding/json matches case-insensitively and ignores unknown
// keys), a key repeated in one object, a JSON type that does not fit the Go
// type (a fraction or exponent for an integer, overflow, a negative number
// for an unsigned one), invalid UTF-8 or a lone UTF-16 surrogate in a
// string, a top-level value that is not an object, data after it, any
// syntax error, and a field the generator lists as decoded by encoding/json
// only (windows.credentialSpec, an interface{}). Where it does not give up,
// it yields what json.Unmarshal into a fresh specs.Spec yields: null leaves
// the zero value, an empty array is an empty non-nil slice, an empty object
// an empty non-nil map, a null array element or map value is the zero value.

// DecodeJSON returns what json.Unmarshal of data into a new specs.Spec
// gives: without reflection (so without encoding/json's ~1 ms of first-use
// set-up in a fresh process) whenever the generated decoder is certain of
// the result, and by json.Unmarshal otherwise, so that every error is
// encoding/json's. Like json.Unmarshal, it decodes a JSON null into a zero
// spec (not nil).
func DecodeJSON(data []byte) (*specs.Spec, error) {
	if s, ok := decodeFast(data); ok {
		return s, nil
	}
	s := new(specs.Spec)
	if err := json.Unmarshal(data, s); err != nil {
		return nil, err
	}
	return s, nil
}

// decodeFast decodes config.json text into a new specs.Spec without
// reflection. ok=false means it is not certain to match encoding/json (see
// above); the caller must then decode with encoding/json.
func decodeFast(data []byte) (s *specs.Spec, ok bool) {
	d := fastDecoder{data: data}
	if d.next() != '{' {
		return nil, false
	}
	d.s = string(data)
	s = new(specs.Spec)
	if !fjSpec(&d, s) || d.next() != 0 || d.i != len(data) {
		return nil, false
	}
	return s, true
}

// fastDecoder reads one JSON document. Its methods report false when the
// input is not what the caller's Go type accepts without doubt (see
// decodeFast); nothing is consumed reliably after that.
type fastDecoder struct {
	data []byte
	// s is data as a string: a string value without escapes is a substring
	// of it, so it costs no allocation. The decoded spec keeps it alive.
	s   string
	i   int    // offset of the next byte to read
	buf []byte // scratch for strings with escapes
}

// next skips whitespace and returns the next byte without consuming it, or
// 0 at the end of the input (a NUL byte is never valid JSON outside a
// string, so either way the caller rejects it).
func (d *fastDecoder) next() byte {
	for d.i < len(d.data) {
		switch c := d.data[d.i]; c {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return c
		}
	}
	return 0
}

// literal consumes lit if it comes next.
func (d *fastDecoder) literal(lit string) bool {
	if len(d.data)-d.i >= len(lit) && string(d.data[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// null consumes a null if one comes next and reports whether it did.
func (d *fastDecoder) null() bool {
	return d.next() == 'n' && d.literal("null")
}

// openObject consumes the '{' of an object.
func (d *fastDecoder) openObject() bool {
	if d.next() != '{' {
		return false
	}
	d.i++
	return true
}

// key reads the next key of an object and the ':' after it; first says
// whether this is the object's first key. done is true at the closing '}',
// which is consumed.
func (d *fastDecoder) key(first bool) (key string, done, ok bool) {
	c := d.next()
	if c == '}' {
		d.i++
		return "", true, true
	}
	if !first {
		if c != ',' {
			return "", false, false
		}
		d.i++
	}
	key, ok = d.str()
	if !ok || d.next() != ':' {
		return "", false, false
	}
	d.i++
	return key, false, true
}

// openArray consumes the '[' of an array.
func (d *fastDecoder) openArray() bool {
	if d.next() != '[' {
		return false
	}
	d.i++
	return true
}

// elem moves to the next element of an array; first says whether it is the
// array's first. done is true at the closing ']', which is consumed.
func (d *fastDecoder) elem(first bool) (done, ok bool) {
	switch d.next() {
	case ']':
		d.i++
		return true, true
	case ',':
		if first {
			return false, false
		}
		d.i++
		return false, true
	}
	return false, first
}

// str reads a string. Without escapes the result is a substring of d.s.
// Invalid UTF-8 and lone surrogates, which encoding/json replaces with
// U+FFFD, are refused.
func (d *fastDecoder) str() (string, bool) {
	if d.next() != '"' {
		return "", false
	}
	start := d.i + 1
	for i := start; i < len(d.data); {
		c := d.data[i]
		switch {
		case c == '"':
			d.i = i + 1
			return d.s[start:i], true
		case c == '\\':
			return d.strEscaped(start, i)
		case c < ' ':
			return "", false
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			if r == utf8.RuneError && size == 1 {
				return "", false
			}
			i += size
		}
	}
	return "", false
}

// strEscaped finishes str for a string that starts at start and has its
// first backslash at i.
func (d *fastDecoder) strEscaped(start, i int) (string, bool) {
	b := append(d.buf[:0], d.data[start:i]...)
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.i = i + 1
			d.buf = b
			return string(b), true
		case c == '\\':
			if i+1 >= len(d.data) {
				return "", false
			}
			i += 2
			switch d.data[i-1] {
			case '"', '\\', '/':
				b = append(b, d.data[i-1])
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := hex4(d.data, i)
				if !ok {
					return "", false
				}
				i += 4
				if utf16.IsSurrogate(r) {
					// Only a high surrogate followed by an escaped low one
					// is certain; encoding/json turns the rest into U+FFFD.
					if r >= 0xdc00 || i+6 > len(d.data) || d.data[i] != '\\' || d.data[i+1] != 'u' {
						return "", false
					}
					r2, ok := hex4(d.data, i+2)
					if !ok || r2 < 0xdc00 || r2 > 0xdfff {
						return "", false
					}
					i += 6
					r = utf16.DecodeRune(r, r2)
				}
				b = utf8.AppendRune(b, r)
			default:
				return "", false
			}
		case c < ' ':
			return "", false
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(d.data[i:])
			if r == utf8.RuneError && size == 1 {
				return "", false
			}
			b = append(b, d.data[i:i+size]...)
			i += size
		}
	}
	return "", false
}

// hex4 parses the four hex digits at data[i:].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// integer reads a JSON number that has neither fraction nor exponent and
// whose magnitude fits in a uint64. Numbers that do not are refused, as
// encoding/json refuses them for an integer field.
func (d *fastDecoder) integer() (neg bool, mag uint64, ok bool) {
	if d.next() == '-' {
		neg = true
		d.i++
	}
	i := d.i
	if i >= len(d.data) || d.data[i] < '0' || d.data[i] > '9' {
		return false, 0, false
	}
	if d.data[i] == '0' {
		i++
	} else {
		for ; i < len(d.data) && '0' <= d.data[i] && d.data[i] <= '9'; i++ {
			digit := uint64(d.data[i] - '0')
			if mag > (^uint64(0)-digit)/10 {
				return false, 0, false
			}
			mag = mag*10 + digit
		}
	}
	if i < len(d.data) {
		switch d.data[i] {
		case '.', 'e', 'E':
			return false, 0, false
		}
	}
	d.i = i
	return neg, mag, true
}

// decStr decodes a string into v; null leaves v as it is.
func decStr[T ~string](d *fastDecoder, v *T) bool {
	if d.null() {
		return true
	}
	s, ok := d.str()
	*v = T(s)
	return ok
}

// decBool decodes true or false into v; null leaves v as it is.
func decBool[T ~bool](d *fastDecoder, v *T) bool {
	switch d.next() {
	case 't':
		*v = true
		return d.literal("true")
	case 'f':
		*v = false
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return false
}

// decInt decodes an integer into v, refusing one that overflows T; null
// leaves v as it is.
func decInt[T ~int | ~int8 | ~int16 | ~int32 | ~int64](d *fastDecoder, v *T) bool {
	if d.null() {
		return true
	}
	neg, mag, ok := d.integer()
	if !ok {
		return false
	}
	var n int64
	if neg {
		if mag > 1<<63 {
			return false
		}
		n = int64(-mag) // -(1<<63) wraps to math.MinInt64, as wanted
	} else {
		if mag > 1<<63-1 {
			return false
		}
		n = int64(mag)
	}
	x := T(n)
	if int64(x) != n {
		return false
	}
	*v = x
	return true
}

// decUint decodes a non-negative integer into v, refusing one that
// overflows T and any with a minus sign (encoding/json refuses even -0);
// null leaves v as it is.
func decUint[T ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64](d *fastDecoder, v *T) bool {
	if d.null() {
		return true
	}
	neg, mag, ok := d.integer()
	if !ok || neg {
		return false
	}
	x := T(mag)
	if uint64(x) != mag {
		return false
	}
	*v = x
	return true
}

// decPtr decodes into a new T that *v then points to; null leaves *v nil.
func decPtr[T any](d *fastDecoder, v **T, elem func(*fastDecoder, *T) bool) bool {
	if d.null() {
		*v = nil
		return true
	}
	p := new(T)
	if !elem(d, p) {
		return false
	}
	*v = p
	return true
}

// decSlice decodes an array into *v: [] gives an empty non-nil slice, null
// a nil one.
func decSlice[T any](d *fastDecoder, v *[]T, elem func(*fastDecoder, *T) bool) bool {
	if d.null() {
		*v = nil
		return true
	}
	if !d.openArray() {
		return false
	}
	s := []T{}
	for first := true; ; first = false {
		done, ok := d.elem(first)
		if !ok {
			return false
		}
		if done {
			break
		}
		var zero T
		s = append(s, zero)
		if !elem(d, &s[len(s)-1]) {
			return false
		}
	}
	*v = s
	return true
}

// decMap decodes an object into *v: {} gives an empty non-nil map, null a
// nil one. A repeated key is refused.
func decMap[K ~string, T any](d *fastDecoder, v *map[K]T, elem func(*fastDecoder, *T) bool) bool {
	if d.null() {
		*v = nil
		return true
	}
	if !d.openObject() {
		return false
	}
	m := map[K]T{}
	for first := true; ; first = false {
		k, done, ok := d.key(first)
		if !ok {
			return false
		}
		if done {
			break
		}
		var x T
		if !elem(d, &x) {
			return false
		}
		n := len(m)
		m[K(k)] = x
		if len(m) == n {
			return false
		}
	}
	*v = m
	return true
}

// object decodes an object into a struct: field decodes the value of key
// into its field and returns the field's bit (1<<index); ok=false for a key
// that is not exactly a field's name. A repeated key is refused; null
// leaves the struct as it is.
func (d *fastDecoder) object(field func(key string) (bit uint64, ok bool)) bool {
	if d.null() {
		return true
	}
	if !d.openObject() {
		return false
	}
	var seen uint64
	for first := true; ; first = false {
		key, done, ok := d.key(first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		bit, ok := field(key)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
}
