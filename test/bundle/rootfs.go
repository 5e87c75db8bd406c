package bundle

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Paths of the template inside the repository.
const (
	templateDir = "_build/rootfs"
	lockFile    = "_build/rootfs.lock"
	busyboxDyn  = "_build/busybox-dyn/bin/busybox"
	versionFile = "_build/rootfs.version"

	// templateVersion changes whenever populate makes a different tree, so
	// that an old template is rebuilt.
	templateVersion = "3"
)

// Host paths the template is made from.
var (
	busyboxStatic = "/bin/busybox"
	libDirs       = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/lib", "/usr/lib"}
)

const passwd = `root:x:0:0:root:/root:/bin/sh
tester:x:1000:1000:tester:/home/tester:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`

const group = `root:x:0:
tester:x:1000:
testers:x:1001:tester
nogroup:x:65534:
`

var (
	rootfsOnce sync.Once
	rootfsPath string
	rootfsErr  error
)

// Rootfs returns the template root filesystem, building it the first time a
// test process asks (and rebuilding it when it is missing or its probe is
// stale). The template is shared: treat it as read-only and copy it (New
// does) before running a container on it.
func Rootfs(t testing.TB) string {
	t.Helper()
	rootfsOnce.Do(func() {
		rootfsPath, rootfsErr = BuildRootfs()
	})
	if rootfsErr != nil {
		t.Fatalf("build test rootfs: %v", rootfsErr)
	}
	return rootfsPath
}

// RepoRoot returns the directory of the repository's go.mod, searching
// upwards from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/gantry-project/gantry\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod of github.com/gantry-project/gantry above the working directory")
		}
		dir = parent
	}
}

// lock takes a flock on the repository's rootfs lock file, exclusive or
// shared; the returned function releases it.
func lock(root string, how int) (func(), error) {
	p := filepath.Join(root, lockFile)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}

// BuildRootfs builds the probe and, when the template is missing or holds
// another probe, rebuilds the template. It returns the template's path.
// It is safe to call from concurrent processes.
func BuildRootfs() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	unlock, err := lock(root, unix.LOCK_EX)
	if err != nil {
		return "", err
	}
	defer unlock()

	dst := filepath.Join(root, templateDir)
	probe := filepath.Join(root, "_build", fmt.Sprintf("probe.%d", os.Getpid()))
	defer os.Remove(probe)
	cmd := exec.Command("go", "build", "-o", probe, "./test/probe")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build probe: %w: %s", err, out)
	}
	newProbe, err := os.ReadFile(probe)
	if err != nil {
		return "", fmt.Errorf("build probe: %w", err)
	}
	if old, err := os.ReadFile(filepath.Join(dst, "probe")); err == nil && bytes.Equal(old, newProbe) {
		v, _ := os.ReadFile(filepath.Join(root, versionFile))
		if _, err := os.Stat(filepath.Join(dst, "bin", "busybox")); err == nil && string(v) == templateVersion {
			return dst, nil
		}
	}

	tmp := dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("remove %s: %w", tmp, err)
	}
	if err := populate(root, tmp, probe); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.RemoveAll(dst); err != nil {
		return "", fmt.Errorf("remove old template %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("install template %s: %w", dst, err)
	}
	if err := os.WriteFile(filepath.Join(root, versionFile), []byte(templateVersion), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", versionFile, err)
	}
	return dst, nil
}

func populate(root, dir, probe string) error {
	for _, d := range []struct {
		path string
		mode uint32
	}{
		{"bin", 0o755}, {"etc", 0o755}, {"proc", 0o755}, {"sys", 0o755},
		{"dev", 0o755}, {"tmp", 0o1777}, {"root", 0o700}, {"run", 0o755},
		{"home/tester", 0o755}, {"dyn", 0o755}, {"mnt", 0o755}, {"var", 0o755},
	} {
		p := filepath.Join(dir, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
		// unix.Chmod takes the raw mode (os.Chmod would drop the sticky
		// bit of 0o1777); MkdirAll is subject to the umask.
		if err := unix.Chmod(p, d.mode); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(filepath.Join(dir, "home/tester"), 1000, 1000); err != nil {
			return fmt.Errorf("chown home/tester: %w", err)
		}
	}
	files := map[string]string{
		"etc/passwd":   passwd,
		"etc/group":    group,
		"etc/hostname": "gantry-test\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	if err := copyFile(probe, filepath.Join(dir, "probe"), 0o755); err != nil {
		return err
	}

	// busybox-static and a link for each applet.
	if err := copyFile(busyboxStatic, filepath.Join(dir, "bin", "busybox"), 0o755); err != nil {
		return fmt.Errorf("busybox-static (install busybox-static, see scripts/deps.sh): %w", err)
	}
	out, err := exec.Command(busyboxStatic, "--list").Output()
	if err != nil {
		return fmt.Errorf("list busybox applets: %w", err)
	}
	for _, name := range strings.Fields(string(out)) {
		if name == "busybox" || strings.Contains(name, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", name)); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("link applet %s: %w", name, err)
		}
	}

	// The dynamic busybox, if scripts/deps.sh unpacked it: /dyn/busybox
	// with links /dyn/ls and /dyn/sh, its ELF interpreter and libraries at
	// their usual absolute paths.
	dyn := filepath.Join(root, busyboxDyn)
	if _, err := os.Stat(dyn); err == nil {
		if err := copyFile(dyn, filepath.Join(dir, "dyn", "busybox"), 0o755); err != nil {
			return err
		}
		for _, name := range []string{"ls", "sh", "cat", "true"} {
			if err := os.Symlink("busybox", filepath.Join(dir, "dyn", name)); err != nil {
				return fmt.Errorf("link /dyn/%s: %w", name, err)
			}
		}
		if err := copyLibs(dyn, dir); err != nil {
			return fmt.Errorf("libraries of %s: %w", dyn, err)
		}
	}
	return nil
}

// copyLibs copies the ELF interpreter and the shared libraries that bin
// needs (transitively) from the host into rootfs at the same paths.
func copyLibs(bin, rootfs string) error {
	seen := map[string]bool{}
	queue := []string{bin}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		f, err := elf.Open(p)
		if err != nil {
			return fmt.Errorf("read ELF %s: %w", p, err)
		}
		needed, err := f.ImportedLibraries()
		interp := ""
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				b := make([]byte, prog.Filesz)
				if _, err := prog.ReadAt(b, 0); err == nil {
					interp = strings.TrimRight(string(b), "\x00")
				}
			}
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("read ELF %s: %w", p, err)
		}
		var paths []string
		if interp != "" {
			paths = append(paths, interp)
		}
		for _, lib := range needed {
			found := ""
			for _, d := range libDirs {
				if _, err := os.Stat(filepath.Join(d, lib)); err == nil {
					found = filepath.Join(d, lib)
					break
				}
			}
			if found == "" {
				return fmt.Errorf("library %s needed by %s: not found in %v", lib, p, libDirs)
			}
			paths = append(paths, found)
		}
		for _, lp := range paths {
			if seen[lp] {
				continue
			}
			seen[lp] = true
			if err := copyFile(lp, filepath.Join(rootfs, lp), 0o755); err != nil {
				return err
			}
			queue = append(queue, lp)
		}
	}
	return nil
}

// copyFile copies the content of src (following symlinks) to dst.
func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return os.Chmod(dst, mode)
}
