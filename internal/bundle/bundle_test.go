package bundle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

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

func TestVolatileMounts(t *testing.T) {
	rw := snapshot.Mount{Type: "overlay", Source: "overlay", Options: []string{"workdir=/w", "upperdir=/u", "lowerdir=/l"}}
	ro := snapshot.Mount{Type: "overlay", Source: "overlay", Options: []string{"ro", "lowerdir=/a:/b"}}
	bind := snapshot.Mount{Type: "bind", Source: "/s", Options: []string{"rw", "rbind"}}
	out, changed := volatileMounts([]snapshot.Mount{rw, ro, bind})
	if !changed {
		t.Fatal("no mount changed, want the writable overlay")
	}
	if got := strings.Join(out[0].Options, ","); got != "workdir=/w,upperdir=/u,lowerdir=/l,volatile" {
		t.Errorf("writable overlay options %q, want volatile added", got)
	}
	if len(rw.Options) != 3 {
		t.Errorf("the caller's options were changed: %v", rw.Options)
	}
	if strings.Join(out[1].Options, ",") != "ro,lowerdir=/a:/b" || strings.Join(out[2].Options, ",") != "rw,rbind" {
		t.Errorf("read-only overlay or bind changed: %v %v", out[1].Options, out[2].Options)
	}
	if _, changed := volatileMounts([]snapshot.Mount{ro, bind}); changed {
		t.Error("changed mounts without a writable overlay")
	}
}

// TestCreateVolatile mounts a real overlay with the volatile option and
// removes it.
func TestCreateVolatile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	base := t.TempDir()
	for _, d := range []string{"l", "u", "w"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "l", "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "b")
	t.Cleanup(func() { snapshot.UnmountAll(Rootfs(dir)) })
	mounts := []snapshot.Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"workdir=" + filepath.Join(base, "w"), "upperdir=" + filepath.Join(base, "u"), "lowerdir=" + filepath.Join(base, "l"),
	}}}
	if err := CreateVolatile(dir, mounts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(Rootfs(dir), "hello")); err != nil {
		t.Fatalf("rootfs not mounted: %v", err)
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(info), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == Rootfs(dir) {
			line = l
		}
	}
	var uname unix.Utsname
	unix.Uname(&uname)
	if release := unix.ByteSliceToString(uname.Release[:]); !strings.Contains(line, "volatile") && !strings.HasPrefix(release, "5.") && !strings.HasPrefix(release, "4.") {
		t.Errorf("mount of %s is not volatile on Linux %s: %q", Rootfs(dir), release, line)
	}
	if err := Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("bundle left behind: %v", err)
	}
}
