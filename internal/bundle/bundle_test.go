package bundle

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gantry-project/gantry/internal/snapshot"
)

func TestMountedIn(t *testing.T) {
	info := []byte("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n" +
		"40 22 0:40 / /run/gantry/bundles/default/a\\040b/rootfs rw - overlay overlay rw\n")
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/", true},
		{"/run/gantry/bundles/default/a b/rootfs", true},
		{"/run/gantry/bundles/default/a b/rootfs/", true},
		{"/run/gantry", false},
	} {
		if got := mountedIn(info, tc.path); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestCreateRemove(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "b")
	t.Cleanup(func() { snapshot.UnmountAll(Rootfs(dir)) })
	mounts := []snapshot.Mount{{Type: "bind", Source: src, Options: []string{"rbind", "rw"}}}
	if err := Create(dir, mounts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(Rootfs(dir), "hello")); err != nil {
		t.Fatalf("rootfs not mounted: %v", err)
	}
	if err := Ensure(dir, mounts); err != nil {
		t.Fatal(err)
	}
	if err := Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("bundle left behind: %v", err)
	}
	if _, err := os.Stat(filepath.Join(src, "hello")); err != nil {
		t.Fatalf("snapshot content lost: %v", err)
	}
}
