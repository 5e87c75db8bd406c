package testcgroup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRemoveKillsAndRemoves(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	parent := fmt.Sprintf("/gantry-testcgroup-%d", os.Getpid())
	t.Cleanup(func() { _ = Remove(parent) })
	dirs := Dirs(parent)
	if len(dirs) == 0 {
		t.Skip("no cgroup hierarchy mounted")
	}
	// A process in a child cgroup of the first hierarchy that can hold one.
	child := filepath.Join(dirs[0], "c1")
	if err := os.MkdirAll(child, 0o755); err != nil {
		t.Skipf("cannot create a cgroup: %v", err)
	}
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := os.WriteFile(filepath.Join(child, "cgroup.procs"), []byte(fmt.Sprint(cmd.Process.Pid)), 0o644); err != nil {
		t.Skipf("cannot move a process into %s: %v", child, err)
	}
	if got := Under(parent); len(got) != 1 || !strings.HasSuffix(got[0], "/c1") {
		t.Fatalf("Under(%q) = %v, want the one child c1", parent, got)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	if err := Remove(parent); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err == nil {
		t.Fatal("the process in the cgroup was not killed")
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still there (%v)", d, err)
		}
	}
	if err := Remove("/"); err == nil {
		t.Error("Remove(\"/\") did not refuse")
	}
}

func TestNewParentUnique(t *testing.T) {
	a, b := NewParent("gantry-x"), NewParent("gantry-x")
	if a == b || !strings.HasPrefix(a, "/gantry-x-") || len(a) != len("/gantry-x-")+16 {
		t.Errorf("NewParent gave %q and %q, want two different /gantry-x-<16 hex>", a, b)
	}
}
