package spec

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Why a JSON encoder too: gantry-oci stores the spec in state.json, and
// the first json.Marshal of a specs.Spec in a process builds encoding/json's
// reflection caches for the ~100 types reachable from it (~1.2 ms in a
// fresh `gantry-oci create`, on the CPU the container's init needs while it
// starts). encodeFast writes the same bytes with code generated from the
// specs-go types (the fe* functions of specjson_gen.go) and the helpers
// below, which do what encoding/json does for each kind: struct fields in
// declaration order with embedded structs flattened, omitempty and
// omitzero, nil slices, maps and pointers as null, map keys sorted, integers
// in decimal (os.FileMode too), and strings escaped as json.Marshal escapes
// them (HTML-safe: '<', '>', '&' as \u003c, \u003e, \u0026; U+2028 and
// U+2029 escaped; invalid UTF-8 as \ufffd). It gives up only on a value it
// cannot encode with certainty: a non-nil windows.credentialSpec (an
// interface{}); EncodeJSON then uses json.Marshal.

// EncodeJSON returns what json.Marshal(s) returns, byte for byte: without
// reflection (so without encoding/json's ~1.2 ms of first-use set-up in a
// fresh process) whenever the generated encoder is certain of the result,
// and by json.Marshal otherwise. A nil s encodes as null.
func EncodeJSON(s *specs.Spec) ([]byte, error) {
	if s == nil {
		return []byte("null"), nil
	}
	if b, ok := encodeFast(s); ok {
		return b, nil
	}
	return json.Marshal(s)
}

// encodeFast encodes s without reflection; ok=false means that it is not
// certain to match json.Marshal (see above) and the caller must use
// encoding/json.
func encodeFast(s *specs.Spec) (b []byte, ok bool) {
	e := fastEncoder{b: make([]byte, 0, 4096)}
	if !feSpec(&e, s) {
		return nil, false
	}
	return e.b, true
}

// fastEncoder appends JSON to b. The generated functions write each struct
// field as `,"name":value`; end turns the first comma into the '{'.
type fastEncoder struct {
	b []byte
}

// end closes the object whose first field (if any) was written at start.
func (e *fastEncoder) end(start int) bool {
	if len(e.b) == start {
		e.b = append(e.b, "{}"...)
		return true
	}
	e.b[start] = '{'
	e.b = append(e.b, '}')
	return true
}

func (e *fastEncoder) bool(v bool) {
	if v {
		e.b = append(e.b, "true"...)
	} else {
		e.b = append(e.b, "false"...)
	}
}

func (e *fastEncoder) int(v int64)   { e.b = strconv.AppendInt(e.b, v, 10) }
func (e *fastEncoder) uint(v uint64) { e.b = strconv.AppendUint(e.b, v, 10) }
func (e *fastEncoder) str(s string)  { e.b = appendJSONString(e.b, s) }

// jsonSafe[c] is true for the ASCII bytes json.Marshal writes as they are
// inside a string: all but the control characters, '"', '\\' and the
// three it escapes for HTML ('<', '>', '&').
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

const lowerHex = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaped as json.Marshal
// escapes it.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	done := 0 // s[:done] is in b
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[done:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, `\b`...)
			case '\f':
				b = append(b, `\f`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xf])
			}
			i++
			done = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[done:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[done:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', lowerHex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		done = i
	}
	b = append(b, s[done:]...)
	return append(b, '"')
}

// The helpers below have the type of the generated functions,
// func(*fastEncoder, *T) bool, so that they can encode elements.

func encStr[T ~string](e *fastEncoder, v *T) bool { e.str(string(*v)); return true }
func encBool[T ~bool](e *fastEncoder, v *T) bool  { e.bool(bool(*v)); return true }

func encInt[T ~int | ~int8 | ~int16 | ~int32 | ~int64](e *fastEncoder, v *T) bool {
	e.int(int64(*v))
	return true
}

func encUint[T ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64](e *fastEncoder, v *T) bool {
	e.uint(uint64(*v))
	return true
}

// encPtr encodes *v with elem, or null when it is nil.
func encPtr[T any](e *fastEncoder, v **T, elem func(*fastEncoder, *T) bool) bool {
	if *v == nil {
		e.b = append(e.b, "null"...)
		return true
	}
	return elem(e, *v)
}

// encSlice encodes *v as an array, or null when it is nil.
func encSlice[T any](e *fastEncoder, v *[]T, elem func(*fastEncoder, *T) bool) bool {
	s := *v
	if s == nil {
		e.b = append(e.b, "null"...)
		return true
	}
	e.b = append(e.b, '[')
	for i := range s {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		if !elem(e, &s[i]) {
			return false
		}
	}
	e.b = append(e.b, ']')
	return true
}

// encMap encodes *v as an object with its keys sorted (bytewise, as
// encoding/json sorts string keys), or null when it is nil.
func encMap[K ~string, T any](e *fastEncoder, v *map[K]T, elem func(*fastEncoder, *T) bool) bool {
	m := *v
	if m == nil {
		e.b = append(e.b, "null"...)
		return true
	}
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.b = append(e.b, '{')
	for i, k := range keys {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.str(string(k))
		e.b = append(e.b, ':')
		x := m[k]
		if !elem(e, &x) {
			return false
		}
	}
	e.b = append(e.b, '}')
	return true
}
