package state

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func TestValidateID(t *testing.T) {
	for _, id := range []string{"a", "abc-123", "A.b_c+d", "x1", "9", "Z-_+.z"} {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", "a/b", "../x", "a..b", "-x", ".hidden", "a b", "a\nb", "_x", "+x", "a:b", "a~b", "\u00e9", "a\x00"} {
		if err := ValidateID(id); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ValidateID(%q) = %v, want invalid argument", id, err)
		}
	}
}

func TestStoreLifecycle(t *testing.T) {
	s := &Store{Root: t.TempDir()}
	if err := s.Reserve("c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reserve("c1"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second Reserve = %v, want already exists", err)
	}
	if _, err := s.Load("c1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Load before Save = %v, want not found", err)
	}
	c := &Container{ID: "c1", Pid: os.Getpid()}
	st, _, err := StartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	c.PidStartTime = st
	if err := s.Save(c); err != nil {
		t.Fatal(err)
	}
	if got := s.Status(c, false); got != Created {
		t.Fatalf("status with fifo = %s, want created", got)
	}
	os.Remove(s.FifoPath("c1"))
	if got := s.Status(c, false); got != Running {
		t.Fatalf("status without fifo = %s, want running", got)
	}
	if got := s.Status(c, true); got != Paused {
		t.Fatalf("status frozen = %s, want paused", got)
	}
	c.PidStartTime++ // a reused pid
	if got := s.Status(c, false); got != Stopped {
		t.Fatalf("status with another start time = %s, want stopped", got)
	}
	ids, err := s.List()
	if err != nil || len(ids) != 1 || ids[0] != "c1" {
		t.Fatalf("List() = %v, %v", ids, err)
	}
	if err := s.Remove("c1"); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.List(); len(ids) != 0 {
		t.Fatalf("List() after Remove = %v", ids)
	}
}

// Remove takes the whole directory, also files it does not know by name,
// and a missing directory is no error.
func TestRemoveUnknownFiles(t *testing.T) {
	s := &Store{Root: t.TempDir()}
	if err := s.Reserve("c1"); err != nil {
		t.Fatal(err)
	}
	unlock, err := s.Lock("c1")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if err := s.Save(&Container{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.Dir("c1"), "extra", "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir("c1"), "extra", "sub", "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("c1"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Lstat(s.Dir("c1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state dir after Remove: %v", err)
	}
	if err := s.Remove("c1"); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}
