package container

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestSeccompCacheRefusesDamagedFile: a cached filter whose bytes changed
// (a crash before the unsynced file reached the disk) is never handed out;
// the next create compiles the filter again and repairs the file.
func TestSeccompCacheRefusesDamagedFile(t *testing.T) {
	root := t.TempDir()
	sc := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
	}
	prog, key, err := compiledSeccomp(root, sc)
	if err != nil {
		t.Fatal(err)
	}
	if got := cachedSeccomp(root, key); !bytes.Equal(got, prog) {
		t.Fatalf("cachedSeccomp after a store = %d bytes, want the %d bytes compiled", len(got), len(prog))
	}
	path := filepath.Join(root, ".seccomp", key)
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, damage := range []struct {
		name string
		data []byte
	}{
		{"a flipped bit in the program", func() []byte { d := bytes.Clone(file); d[12] ^= 0x01; return d }()},
		{"truncated", file[:len(file)-9]},
		{"empty", nil},
		{"the program without its checksum", prog},
	} {
		if err := os.WriteFile(path, damage.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if got := cachedSeccomp(root, key); got != nil {
			t.Errorf("%s: cachedSeccomp handed out %d bytes", damage.name, len(got))
		}
		again, _, err := compiledSeccomp(root, sc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, prog) {
			t.Errorf("%s: recompiled program differs from the first", damage.name)
		}
		if got := cachedSeccomp(root, key); !bytes.Equal(got, prog) {
			t.Errorf("%s: the cache file was not repaired by the next compile", damage.name)
		}
	}
}
