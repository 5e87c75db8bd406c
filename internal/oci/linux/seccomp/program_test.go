package seccomp

import (
	"bytes"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestProgramRoundTripAndCacheKey(t *testing.T) {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}},
	}
	p, err := Prepare(s)
	if err != nil {
		t.Fatal(err)
	}
	data, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var q Program
	if err := q.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	again, _ := q.MarshalBinary()
	if !bytes.Equal(data, again) || q.flags != p.flags || len(q.prog) != len(p.prog) {
		t.Fatalf("round trip changed the program: %d/%d instructions, flags %#x/%#x", len(q.prog), len(p.prog), q.flags, p.flags)
	}
	for _, bad := range [][]byte{nil, make([]byte, 8), make([]byte, 17)} {
		if err := new(Program).UnmarshalBinary(bad); err == nil {
			t.Errorf("UnmarshalBinary(%d bytes) accepted", len(bad))
		}
	}
	k1, _ := CacheKey(s)
	k2, _ := CacheKey(s)
	s2 := *s
	s2.DefaultAction = specs.ActKillProcess
	k3, _ := CacheKey(&s2)
	if k1 != k2 || k1 == k3 || len(k1) != 64 {
		t.Fatalf("cache keys %q %q %q: want equal for the same profile, different otherwise", k1, k2, k3)
	}
}
