package gen

import (
	"reflect"
	"strings"
	"testing"
)

type Inner struct {
	A string `json:"a"`
	B int    `json:"b,omitempty"`
}

type okEmbedded struct {
	Inner
	C      []map[string]*Inner `json:"c"`
	Hidden string              `json:"-"`
	//lint:ignore U1000 present so that the generator is seen to skip it
	hidden string
	NoTag  bool
}

type withIface struct {
	X any `json:"x"`
}

type withEmbeddedPtr struct {
	*Inner
}

type withEmbeddedTag struct {
	Inner `json:"inner"`
}

type custom struct{}

func (*custom) UnmarshalJSON([]byte) error { return nil }

type withCustom struct {
	C custom `json:"c"`
}

type text string

func (*text) UnmarshalText([]byte) error { return nil }

type withText struct {
	T []text `json:"t"`
}

type withTextKey struct {
	M map[text]string `json:"m"`
}

type withString struct {
	N int `json:"n,string"`
}

type withFloat struct {
	F *float64 `json:"f"`
}

type withBytes struct {
	B []byte `json:"b"`
}

type withIntKey struct {
	M map[int]string `json:"m"`
}

type withArray struct {
	A [2]int `json:"a"`
}

type withUintptr struct {
	U uintptr `json:"u"`
}

// withDup has two fields named "A" in JSON: one by its Go name, one by its
// tag (go vet refuses two equal tags).
type withDup struct {
	A string
	B string `json:"A"`
}

type withPromotedDup struct {
	Inner
	A2 string `json:"a"`
}

type withBadName struct {
	X int `json:"a b"`
}

type withOption struct {
	X int `json:"x,inline"`
}

type withAnon struct {
	S struct{ A int } `json:"s"`
}

type marshals struct{}

func (marshals) MarshalJSON() ([]byte, error) { return []byte("1"), nil }

type withMarshaler struct {
	M *marshals `json:"m"`
}

type textOut string

func (textOut) MarshalText() ([]byte, error) { return nil, nil }

type withTextMarshaler struct {
	T map[string]textOut `json:"t"`
}

type withOmitzeroStruct struct {
	I Inner `json:"i,omitzero"`
}

type zeroer int

func (zeroer) IsZero() bool { return true }

type withOmitzeroIsZero struct {
	Z zeroer `json:"z,omitzero"`
}

type withUnicodeName struct {
	Ä int
}

func TestGenerateRefuses(t *testing.T) {
	for _, tc := range []struct {
		root reflect.Type
		want string // substring of the error
	}{
		{reflect.TypeFor[withIface](), "withIface.X: interface fields are not supported"},
		{reflect.TypeFor[withEmbeddedPtr](), "withEmbeddedPtr.Inner: an embedded pointer is not supported"},
		{reflect.TypeFor[withEmbeddedTag](), "withEmbeddedTag.Inner: only an exported, untagged, embedded struct"},
		{reflect.TypeFor[withCustom](), "implements json.Unmarshaler"},
		{reflect.TypeFor[withText](), "implements encoding.TextUnmarshaler"},
		{reflect.TypeFor[withTextKey](), "implements encoding.TextUnmarshaler"},
		{reflect.TypeFor[withString](), `json tag option "string" is not supported`},
		{reflect.TypeFor[withFloat](), "kind float64 is not supported"},
		{reflect.TypeFor[withBytes](), "byte slice"},
		{reflect.TypeFor[withIntKey](), "map keys of kind int are not supported"},
		{reflect.TypeFor[withArray](), "kind array is not supported"},
		{reflect.TypeFor[withUintptr](), "kind uintptr is not supported"},
		{reflect.TypeFor[withDup](), `share the JSON name "A"`},
		{reflect.TypeFor[withPromotedDup](), `share the JSON name "a"`},
		{reflect.TypeFor[withBadName](), `json name "a b" is not supported`},
		{reflect.TypeFor[withOption](), `json tag option "inline" is not supported`},
		{reflect.TypeFor[withAnon](), "anonymous struct"},
		{reflect.TypeFor[int](), "not a named struct type"},
		{reflect.TypeFor[withMarshaler](), "implements json.Marshaler"},
		{reflect.TypeFor[withTextMarshaler](), "implements encoding.TextMarshaler"},
		{reflect.TypeFor[withOmitzeroStruct](), "generate encoder for gen.withOmitzeroStruct: field gen.withOmitzeroStruct.I (json \"i\"): omitzero on struct type gen.Inner is not supported"},
		{reflect.TypeFor[withOmitzeroIsZero](), "omitzero on type gen.zeroer, which has an IsZero method, is not supported"},
		{reflect.TypeFor[withUnicodeName](), `json name "Ä" is not supported`},
	} {
		t.Run(tc.root.String(), func(t *testing.T) {
			src, err := Generate(Config{Package: "p", Root: tc.root})
			if err == nil {
				t.Fatalf("Generate succeeded, want an error containing %q; output:\n%s", tc.want, src)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") || err.Error() != strings.ToLower(err.Error()[:1])+err.Error()[1:] {
				t.Errorf("error %q is not one lowercase line", err)
			}
		})
	}
}

type withIfaceOmit struct {
	X any `json:"x,omitempty"`
}

type withFallbackInt struct {
	N int `json:"n"`
}

func TestGenerateFallbackField(t *testing.T) {
	src, err := Generate(Config{Package: "p", Root: reflect.TypeFor[withIface](), Fallback: map[string]string{"gen.withIface.X": "any"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"case \"x\":\n\t\t\treturn 0, false // left to encoding/json: any\n",
		// The encoder gives up on a non-nil value, writes null for nil.
		"\tif v.X != nil {\n\t\treturn false // left to encoding/json: any\n\t}\n\te.b = append(e.b, `,\"x\":`...)\n\te.b = append(e.b, \"null\"...)\n",
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("output lacks %q:\n%s", want, src)
		}
	}

	src, err = Generate(Config{Package: "p", Root: reflect.TypeFor[withIfaceOmit](), Fallback: map[string]string{"gen.withIfaceOmit.X": "any"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "\tif v.X != nil {\n\t\treturn false // left to encoding/json: any\n\t}\n\treturn e.end(start)\n"; !strings.Contains(string(src), want) {
		t.Errorf("output lacks %q (nil is omitted):\n%s", want, src)
	}

	_, err = Generate(Config{Package: "p", Root: reflect.TypeFor[withFallbackInt](), Fallback: map[string]string{"gen.withFallbackInt.N": "no"}})
	if err == nil || !strings.Contains(err.Error(), "a fallback field of kind int is not supported by the encoder") {
		t.Errorf("fallback int field: error %v, want one saying the encoder does not support it", err)
	}

	_, err = Generate(Config{Package: "p", Root: reflect.TypeFor[withIface](), Fallback: map[string]string{"gen.withIface.X": "any", "gen.withIface.Gone": "stale"}})
	if err == nil || !strings.Contains(err.Error(), "fallback fields not found: gen.withIface.Gone") {
		t.Errorf("stale fallback list: error %v, want one naming gen.withIface.Gone", err)
	}
}

func TestGenerateEmbedded(t *testing.T) {
	src, err := Generate(Config{Package: "p", Root: reflect.TypeFor[okEmbedded]()})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`return 1 << 0, decStr(d, &v.Inner.A)`,
		`return 1 << 1, decInt(d, &v.Inner.B)`,
		`return 1 << 2, decSlice(d, &v.C, fjMapStringPtrInner)`,
		`return 1 << 3, decBool(d, &v.NoTag)`,
		`func fjMapStringPtrInner(d *fastDecoder, v *map[string]*gen.Inner) bool {`,
		`return decMap(d, v, fjPtrInner)`,
		`return decPtr(d, v, fjInner)`,
		// The encoder: embedded fields flattened in order, omitempty as a
		// condition, a non-omitempty slice always written.
		"e.b = append(e.b, `,\"a\":`...)\n\te.str(v.Inner.A)\n\tif v.Inner.B != 0 {\n\t\te.b = append(e.b, `,\"b\":`...)\n\t\te.int(int64(v.Inner.B))\n\t}\n\te.b = append(e.b, `,\"c\":`...)\n\tif !encSlice(e, &v.C, feMapStringPtrInner) {",
		"e.b = append(e.b, `,\"NoTag\":`...)\n\te.bool(v.NoTag)\n\treturn e.end(start)\n",
		`func feMapStringPtrInner(e *fastEncoder, v *map[string]*gen.Inner) bool {`,
		`return encMap(e, v, fePtrInner)`,
		`return encPtr(e, v, feInner)`,
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("output lacks %q:\n%s", want, src)
		}
	}
	for _, unwanted := range []string{"Hidden", "hidden"} {
		if strings.Contains(string(src), unwanted) {
			t.Errorf("output decodes the ignored field %s:\n%s", unwanted, src)
		}
	}
}

// TestSpec checks the real configuration generates, and that the header is
// one Go recognises as generated code.
func TestSpec(t *testing.T) {
	src, err := Spec()
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(src), "\n")
	if !strings.HasPrefix(first, "// Code generated ") || !strings.HasSuffix(first, " DO NOT EDIT.") {
		t.Errorf("first line %q is not a generated-code header", first)
	}
}
