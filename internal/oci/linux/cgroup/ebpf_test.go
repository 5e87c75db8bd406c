package cgroup

import (
	"encoding/binary"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// run interprets the decoded bytes of a device program for one request,
// as the kernel would (only the opcodes deviceProgram emits).
func run(t *testing.T, code []byte, typ, access, major, minor uint32) uint64 {
	t.Helper()
	ctx := make([]byte, 12)
	binary.LittleEndian.PutUint32(ctx[0:], access<<16|typ)
	binary.LittleEndian.PutUint32(ctx[4:], major)
	binary.LittleEndian.PutUint32(ctx[8:], minor)
	var reg [11]uint64
	const ctxAddr = 1 << 32
	reg[1] = ctxAddr
	for pc, steps := 0, 0; ; pc, steps = pc+1, steps+1 {
		if pc < 0 || (pc+1)*insnBytes > len(code) || steps > 10000 {
			t.Fatalf("pc %d out of program (len %d)", pc, len(code)/insnBytes)
		}
		b := code[pc*insnBytes:]
		op, dst, src := b[0], b[1]&0xf, b[1]>>4
		off := int16(binary.LittleEndian.Uint16(b[2:]))
		imm := uint64(int64(int32(binary.LittleEndian.Uint32(b[4:]))))
		switch op {
		case opLdxW:
			a := int64(reg[src]-ctxAddr) + int64(off)
			if reg[src] != ctxAddr || a < 0 || a+4 > 12 {
				t.Fatalf("pc %d: load outside the context", pc)
			}
			reg[dst] = uint64(binary.LittleEndian.Uint32(ctx[a:]))
		case opAndK:
			reg[dst] &= imm
		case opRshK:
			reg[dst] >>= imm
		case opMovX:
			reg[dst] = reg[src]
		case opMovK:
			reg[dst] = imm
		case opJneK:
			if reg[dst] != imm {
				pc += int(off)
			}
		case opJeqK:
			if reg[dst] == imm {
				pc += int(off)
			}
		case opExit:
			return reg[0]
		default:
			t.Fatalf("pc %d: unknown opcode %#x", pc, op)
		}
	}
}

// reference is the intended semantics: the last matching rule wins, no match denies.
func reference(rules []deviceRule, typ, access uint32, major, minor int64) bool {
	allowed := false
	for _, r := range rules {
		if r.typ != devAll {
			if r.typ != typ || (r.major >= 0 && r.major != major) || (r.minor >= 0 && r.minor != minor) {
				continue
			}
			if r.allow && access&^r.access != 0 {
				continue
			}
			if !r.allow && access&r.access == 0 {
				continue
			}
		}
		allowed = r.allow
	}
	return allowed
}

func parseRules(t *testing.T, in []specs.LinuxDeviceCgroup) []deviceRule {
	var out []deviceRule
	for _, d := range in {
		r, err := parseDeviceRule(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestDeviceProgramGolden(t *testing.T) {
	rules := parseRules(t, []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"},
	})
	got := deviceProgram(rules)
	want := []insn{
		{code: opLdxW, dst: r2, src: r1},
		{code: opAndK, dst: r2, imm: 0xffff},
		{code: opLdxW, dst: r3, src: r1},
		{code: opRshK, dst: r3, imm: 16},
		{code: opLdxW, dst: r4, src: r1, off: 4},
		{code: opLdxW, dst: r5, src: r1, off: 8},
		// last rule first: c 1:5 r
		{code: opJneK, dst: r2, imm: int32(devChar), off: 7},
		{code: opMovX, dst: r1, src: r3},
		{code: opAndK, dst: r1, imm: int32(accWrite | accMknod)},
		{code: opJneK, dst: r1, imm: 0, off: 4},
		{code: opJneK, dst: r4, imm: 1, off: 3},
		{code: opJneK, dst: r5, imm: 5, off: 2},
		{code: opMovK, dst: r0, imm: 1},
		{code: opExit},
		// "deny a": unconditional, ends the program
		{code: opMovK, dst: r0, imm: 0},
		{code: opExit},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d instructions, want %d:\n%v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("insn %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	enc := encode(got)
	if len(enc) != 8*len(got) || enc[8*4] != opLdxW || enc[8*4+1] != r4|r1<<4 || enc[8*4+2] != 4 {
		t.Errorf("encoding of insn 4 = % x", enc[32:40])
	}
}

func TestDeviceProgramSemantics(t *testing.T) {
	ruleSets := map[string][]specs.LinuxDeviceCgroup{
		"runc-like defaults": {
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(136), Access: "rwm"},
			{Allow: true, Type: "b", Major: i64(8), Minor: i64(0), Access: "r"},
		},
		"later deny overrides": {
			{Allow: true, Type: "a"},
			{Allow: false, Type: "c", Major: i64(1), Minor: i64(3), Access: "w"},
			{Allow: false, Type: "b", Access: "m"},
		},
		"later allow overrides": {
			{Allow: false, Type: "c", Major: i64(1), Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "rw"},
		},
		"empty":                   {},
		"allow all then deny all": {{Allow: true}, {Allow: false}},
	}
	for name, set := range ruleSets {
		rules := parseRules(t, set)
		code := encode(deviceProgram(rules))
		for _, typ := range []uint32{devBlock, devChar} {
			for access := uint32(1); access <= accAll; access++ {
				for _, major := range []int64{1, 8, 136} {
					for _, minor := range []int64{0, 3, 5, 9} {
						want := reference(rules, typ, access, major, minor)
						got := run(t, code, typ, access, uint32(major), uint32(minor)) == 1
						if got != want {
							t.Errorf("%s: type %d access %d %d:%d: program says %v, rules say %v", name, typ, access, major, minor, got, want)
						}
					}
				}
			}
		}
	}
	// Spot checks that pin the reference itself.
	rules := parseRules(t, ruleSets["later deny overrides"])
	for _, c := range []struct {
		typ, acc   uint32
		maj, minor int64
		want       bool
	}{
		{devChar, accRead, 1, 3, true},
		{devChar, accRead | accWrite, 1, 3, false},
		{devBlock, accMknod, 8, 0, false},
		{devBlock, accRead, 8, 0, true},
	} {
		if got := run(t, encode(deviceProgram(rules)), c.typ, c.acc, uint32(c.maj), uint32(c.minor)) == 1; got != c.want {
			t.Errorf("later deny overrides: %+v = %v", c, got)
		}
	}
}
