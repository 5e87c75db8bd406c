package testcgroup

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Dirs returns <hierarchy>/<parent> for every mounted hierarchy: one
// directory on a pure cgroup v2 host, one per v1 controller (and the
// cgroup2 mount of a hybrid host) otherwise.
func Dirs(parent string) []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{filepath.Join("/sys/fs/cgroup", parent)}
	}
	var out []string
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range ents {
		if e.IsDir() && e.Type()&os.ModeSymlink == 0 {
			out = append(out, filepath.Join("/sys/fs/cgroup", e.Name(), parent))
		}
	}
	return out
}

// Under lists the cgroups directly below parent, in every hierarchy.
func Under(parent string) []string {
	var out []string
	for _, d := range Dirs(parent) {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if e.IsDir() {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out
}

// Remove kills whatever runs in the cgroups below parent and removes them
// and parent itself, in every hierarchy. A parent that does not exist is
// fine.
func Remove(parent string) error {
	if parent == "" || parent == "/" {
		return fmt.Errorf("refusing to remove the cgroup parent %q", parent)
	}
	var errs []error
	for _, d := range Dirs(parent) {
		if err := removeTree(d); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

func removeTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	// A frozen v1 cgroup keeps its killed processes: thaw it first.
	_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0o644)
	for i := 0; ; i++ {
		procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(procs)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if i == 100 {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// NewParent returns a cgroup parent "/<prefix>-<random>" that no other
// test, concurrent or not, uses (t.TempDir's base name is the same "001"
// in every test, so it cannot tell tests apart).
func NewParent(prefix string) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "/" + prefix + "-" + hex.EncodeToString(b[:])
}
