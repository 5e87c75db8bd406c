package spec

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/test/bundle"
)

// encodeCase is a spec and whether encodeFast must encode it (true) or
// must give up on it (false).
type encodeCase struct {
	name string
	s    *specs.Spec
	fast bool
}

// hardStrings are strings whose escaping json.Marshal decides byte by
// byte: HTML characters, control characters, DEL, the two JavaScript line
// separators, invalid and truncated UTF-8, UTF-8-encoded surrogates,
// non-ASCII text.
var hardStrings = []string{
	"",
	"plain",
	`<script>&amp;</script>`,
	"\"quoted\" back\\slash /slash",
	"\x00\x01\x07\b\t\n\v\f\r\x1b\x1f \x7f",
	"line\u2028para\u2029end\u2027\u202a",
	"h\u00e9llo w\u00f6rld 😀 \ufffd \U0010FFFF",
	"a\xffb\xfe\xc3(\xe2\x82\xe2\x28\xa1\xf0\x90\x80",
	"\xed\xa0\x80\xed\xbf\xbf",  // surrogates encoded in UTF-8
	"\xf4\x90\x80\x80 \xc0\xaf", // beyond U+10FFFF, overlong
	"trailing \xe2\x80",
	"\xe2\x80\xa8\xe2\x80",
}

// allBytes is every byte value once, valid UTF-8 or not.
func allBytes() string {
	var b [256]byte
	for i := range b {
		b[i] = byte(i)
	}
	return string(b[:])
}

// encodeCases returns the specs TestFastEncodeMatchesMarshal checks: every
// config of the decoder's corpus that encoding/json decodes, and specs
// built here for what JSON text cannot express (invalid UTF-8) or what the
// encoder must decide (nil against empty, zero numbers, key order).
func encodeCases(t *testing.T) []encodeCase {
	t.Helper()
	var cases []encodeCase
	for _, fc := range fastCases(t) {
		var s specs.Spec
		if err := json.Unmarshal([]byte(fc.config), &s); err != nil {
			continue
		}
		fallback := s.Windows != nil && s.Windows.CredentialSpec != nil
		cases = append(cases, encodeCase{name: "config " + fc.name, s: &s, fast: !fallback})
	}
	rootless := Example()
	ToRootless(rootless, 1000, 1000)
	cases = append(cases,
		encodeCase{"Example", Example(), true},
		encodeCase{"Example rootless", rootless, true},
		encodeCase{"test/bundle BaseSpec", bundle.BaseSpec("x"), true},
		encodeCase{"zero spec", &specs.Spec{}, true},
	)

	strs := append(append([]string{}, hardStrings...), allBytes())
	{
		s := &specs.Spec{Process: &specs.Process{Args: strs, Env: strs}, Annotations: map[string]string{}}
		for i, str := range strs {
			s.Annotations[str] = strs[len(strs)-1-i]
		}
		s.Hostname = strings.Join(strs, "")
		cases = append(cases, encodeCase{"hard strings", s, true})
	}
	for i, str := range strs {
		cases = append(cases, encodeCase{"hard string " + string(rune('a'+i)), &specs.Spec{Version: str, Linux: &specs.Linux{Sysctl: map[string]string{str: str}}}, true})
	}

	// Map keys whose order differs between a bytewise sort and others
	// (case, length, non-ASCII, a NUL, keys that escaping changes).
	cases = append(cases, encodeCase{"map key order", &specs.Spec{Annotations: map[string]string{
		"b": "1", "a": "2", "B": "3", "A": "4", "ab": "5", "a\x00": "6", "\u00e9": "7", "e": "8", "\xff": "9",
		"<": "10", "&": "11", "": "12", "a b": "13", "\u2028": "14", "~": "15", "\x7f": "16",
	}}, true})

	// nil against empty, for fields with and without omitempty.
	u0, u64 := uint64(0), uint64(math.MaxUint64)
	cases = append(cases,
		encodeCase{"nil slices without omitempty", &specs.Spec{
			Windows: &specs.Windows{},
			VM:      &specs.VM{HwConfig: &specs.HWConfig{IOMems: []specs.IOMems{{}}}},
			Linux: &specs.Linux{Seccomp: &specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{{}}},
				Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{}}}},
		}, true},
		encodeCase{"empty slices and maps", &specs.Spec{
			Mounts: []specs.Mount{}, Annotations: map[string]string{},
			Process: &specs.Process{Args: []string{}, Env: []string{}, Rlimits: []specs.POSIXRlimit{},
				Capabilities: &specs.LinuxCapabilities{Bounding: []string{}},
				User:         specs.User{AdditionalGids: []uint32{}}},
			Windows: &specs.Windows{LayerFolders: []string{}},
			Linux: &specs.Linux{Sysctl: map[string]string{}, NetDevices: map[string]specs.LinuxNetDevice{},
				TimeOffsets: map[string]specs.LinuxTimeOffset{},
				Resources:   &specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{}, Unified: map[string]string{}},
				Seccomp:     &specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{{Names: []string{}}}}},
		}, true},
		encodeCase{"pointers to zero values", &specs.Spec{
			Process: &specs.Process{OOMScoreAdj: new(int), ConsoleSize: &specs.Box{}, Capabilities: &specs.LinuxCapabilities{},
				Scheduler: &specs.Scheduler{}, IOPriority: &specs.LinuxIOPriority{}, User: specs.User{Umask: new(uint32)}},
			Root: &specs.Root{}, Hooks: &specs.Hooks{}, Solaris: &specs.Solaris{}, ZOS: &specs.ZOS{}, FreeBSD: &specs.FreeBSD{Jail: &specs.FreeBSDJail{Allow: &specs.FreeBSDJailAllow{}}},
			VM: &specs.VM{HwConfig: &specs.HWConfig{IOMems: []specs.IOMems{{FirstGFN: &u0, FirstMFN: &u0, NrMFNs: &u64}}}},
			Linux: &specs.Linux{Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: new(int64), Swappiness: new(uint64), DisableOOMKiller: new(bool)},
				CPU: &specs.LinuxCPU{}, Pids: &specs.LinuxPids{}, BlockIO: &specs.LinuxBlockIO{Weight: new(uint16),
					WeightDevice: []specs.LinuxWeightDevice{{}}, ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{}}},
				Network: &specs.LinuxNetwork{}},
				Seccomp: &specs.LinuxSeccomp{}, IntelRdt: &specs.LinuxIntelRdt{}, Personality: &specs.LinuxPersonality{},
				Devices: []specs.LinuxDevice{{FileMode: new(os.FileMode), UID: new(uint32)}}},
		}, true},
		encodeCase{"integer limits and file modes", &specs.Spec{
			Process: &specs.Process{OOMScoreAdj: ptr(math.MinInt), User: specs.User{UID: math.MaxUint32},
				Rlimits: []specs.POSIXRlimit{{Hard: math.MaxUint64}}},
			Linux: &specs.Linux{
				Devices: []specs.LinuxDevice{{FileMode: ptr(os.FileMode(0o20000000666)), Major: math.MinInt64, Minor: math.MaxInt64},
					{FileMode: ptr(os.ModeDevice | os.ModeCharDevice | 0o600)}},
				Resources: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(math.MaxUint16)),
					WeightDevice: []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: -1, Minor: 1}, Weight: ptr(uint16(1))}}}}},
			FreeBSD: &specs.FreeBSD{Devices: []specs.FreeBSDDevice{{Path: "/dev/null", Mode: ptr(os.FileMode(math.MaxUint32))}}},
		}, true},
		encodeCase{"windows without credential spec", &specs.Spec{Windows: &specs.Windows{Servicing: true}}, true},
		encodeCase{"windows credential spec", &specs.Spec{Windows: &specs.Windows{CredentialSpec: map[string]any{"a": []any{1.5, "<x>", nil}}}}, false},
		encodeCase{"windows credential spec, empty map", &specs.Spec{Windows: &specs.Windows{CredentialSpec: map[string]any{}}}, false},
		encodeCase{"windows credential spec, nil pointer in an interface", &specs.Spec{Windows: &specs.Windows{CredentialSpec: (*int)(nil)}}, false},
	)
	return cases
}

// checkEncode fails unless EncodeJSON(s) is json.Marshal(s), byte for
// byte, and reports whether encodeFast encoded s.
func checkEncode(t *testing.T, s *specs.Spec) bool {
	t.Helper()
	want, werr := json.Marshal(s)
	got, err := EncodeJSON(s)
	if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
		t.Fatalf("EncodeJSON error %v, json.Marshal error %v", err, werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("EncodeJSON differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
	fast, ok := encodeFast(s)
	if ok && !bytes.Equal(fast, want) {
		t.Fatalf("encodeFast differs from json.Marshal:\n got %s\nwant %s", fast, want)
	}
	return ok
}

func TestFastEncodeMatchesMarshal(t *testing.T) {
	cases := encodeCases(t)
	if len(cases) < 80 {
		t.Fatalf("only %d cases; the decoder's corpus was not found", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if fast := checkEncode(t, tc.s); fast != tc.fast {
				t.Errorf("encodeFast ok = %v, want %v", fast, tc.fast)
			}
		})
	}
}

// TestFastEncodeCoversEveryField sets each leaf field of specs.Spec alone
// (the decoder test's walk), then each with its zero value under non-nil
// containers, and checks the encoding.
func TestFastEncodeCoversEveryField(t *testing.T) {
	typ := reflect.TypeFor[specs.Spec]()
	vs := variants(t, typ, 0)
	zs := zeroVariants(t, typ, 0)
	if len(vs) < 200 || len(zs) < 200 {
		t.Fatalf("only %d and %d fields found in specs.Spec; the walk is broken", len(vs), len(zs))
	}
	for _, v := range append(vs, zs...) {
		s := v.val.Addr().Interface().(*specs.Spec)
		if fast := checkEncode(t, s); fast == v.fallback {
			t.Errorf("%s: encodeFast ok = %v, want %v", v.path, fast, !v.fallback)
		}
	}
}

// zeroVariants is variants with zero leaves: each leaf field's zero value,
// reached through non-nil pointers, one-element slices and maps, and each
// slice, map and pointer field also empty (or nil inside a set parent).
func zeroVariants(t *testing.T, typ reflect.Type, depth int) []variant {
	if depth > 20 {
		t.Fatalf("type %v nests too deep", typ)
	}
	var out []variant
	switch typ.Kind() {
	case reflect.Struct:
		for _, f := range reflect.VisibleFields(typ) {
			if f.Anonymous || !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			for _, w := range zeroVariants(t, f.Type, depth+1) {
				v := reflect.New(typ).Elem()
				v.FieldByIndex(f.Index).Set(w.val)
				out = append(out, variant{path: join(name, w.path), val: v})
			}
		}
	case reflect.Pointer:
		out = append(out, variant{path: "(nil)", val: reflect.Zero(typ)})
		for _, w := range zeroVariants(t, typ.Elem(), depth+1) {
			p := reflect.New(typ.Elem())
			p.Elem().Set(w.val)
			out = append(out, variant{path: w.path, val: p})
		}
	case reflect.Slice:
		out = append(out, variant{path: "(nil)", val: reflect.Zero(typ)}, variant{path: "[]", val: reflect.MakeSlice(typ, 0, 0)})
		for _, w := range zeroVariants(t, typ.Elem(), depth+1) {
			s := reflect.MakeSlice(typ, 1, 1)
			s.Index(0).Set(w.val)
			out = append(out, variant{path: join("[0]", w.path), val: s})
		}
	case reflect.Map:
		out = append(out, variant{path: "(nil)", val: reflect.Zero(typ)}, variant{path: "{}", val: reflect.MakeMap(typ)})
		for _, w := range zeroVariants(t, typ.Elem(), depth+1) {
			m := reflect.MakeMap(typ)
			m.SetMapIndex(reflect.Zero(typ.Key()), w.val)
			out = append(out, variant{path: join("[]", w.path), val: m})
		}
	case reflect.Interface:
		out = append(out, variant{path: "(nil)", val: reflect.Zero(typ)})
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		out = append(out, variant{val: reflect.Zero(typ)})
	default:
		t.Fatalf("type %v: kind %v not handled by the test", typ, typ.Kind())
	}
	return out
}

func TestEncodeJSONNil(t *testing.T) {
	got, err := EncodeJSON(nil)
	want, _ := json.Marshal((*specs.Spec)(nil))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("EncodeJSON(nil) = %s, %v; want %s", got, err, want)
	}
}

// TestEncodeJSONFallbackError: a spec encoding/json cannot encode gives
// encoding/json's error.
func TestEncodeJSONFallbackError(t *testing.T) {
	s := &specs.Spec{Windows: &specs.Windows{CredentialSpec: map[string]any{"f": func() {}}}}
	_, werr := json.Marshal(s)
	got, err := EncodeJSON(s)
	if werr == nil || err == nil || err.Error() != werr.Error() {
		t.Errorf("EncodeJSON = %s, %v; want json.Marshal's error %v", got, err, werr)
	}
}

// TestFastEncodeStrings checks appendJSONString against json.Marshal on
// every one- and two-byte string and on the hard strings.
func TestFastEncodeStrings(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
	for i := range 256 {
		check(string([]byte{byte(i)}))
		for j := range 256 {
			check(string([]byte{byte(i), byte(j)}))
		}
	}
	for _, s := range hardStrings {
		check(s)
	}
	check(allBytes())
	for r := rune(0); r <= utf8.MaxRune; r += 17 {
		check("x" + string(r) + "y")
	}
}

// TestDecodeJSON checks that DecodeJSON gives what json.Unmarshal gives,
// errors included, on the decoder's corpus.
func TestDecodeJSON(t *testing.T) {
	for _, tc := range fastCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeJSON([]byte(tc.config))
			want := new(specs.Spec)
			werr := json.Unmarshal([]byte(tc.config), want)
			if werr != nil {
				if err == nil || err.Error() != werr.Error() || got != nil {
					t.Errorf("DecodeJSON = %v, %v; want nil, %v", got, err, werr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("DecodeJSON = %+v, %v; want %+v", got, err, want)
			}
		})
	}
	if s, err := DecodeJSON([]byte("null")); err != nil || s == nil || !reflect.DeepEqual(s, &specs.Spec{}) {
		t.Errorf("DecodeJSON(null) = %v, %v; want a zero spec", s, err)
	}
}

// FuzzFastEncode: for any input that encoding/json decodes into a
// specs.Spec, EncodeJSON gives json.Marshal's bytes, by encodeFast unless
// the spec has a windows.credentialSpec; str, placed in a few string
// fields and map keys, brings strings JSON text cannot (invalid UTF-8).
func FuzzFastEncode(f *testing.F) {
	for i, tc := range fastCases(f) {
		f.Add([]byte(tc.config), hardStrings[i%len(hardStrings)])
	}
	f.Fuzz(func(t *testing.T, data []byte, str string) {
		var s specs.Spec
		if err := json.Unmarshal(data, &s); err != nil {
			return
		}
		for range 2 {
			fallback := s.Windows != nil && s.Windows.CredentialSpec != nil
			if fast := checkEncode(t, &s); fast == fallback {
				t.Fatalf("encodeFast ok = %v on %q, want %v", fast, data, !fallback)
			}
			s.Hostname = str
			if s.Annotations == nil {
				s.Annotations = map[string]string{}
			}
			s.Annotations[str] = str
			if s.Process != nil {
				s.Process.Args = append(s.Process.Args, str)
			}
		}
	})
}
