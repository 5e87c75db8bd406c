package integration

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/test/bundle"
	"github.com/gantry-project/gantry/test/probe/report"
)

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// waitExecAway polls until pid no longer runs the binary link named
// (it executed another one, or is gone); a safety deadline, not a timing
// assertion.
func waitExecAway(t *testing.T, pid int, link string) {
	t.Helper()
	exe := "/proc/" + strconv.Itoa(pid) + "/exe"
	deadline := time.Now().Add(30 * time.Second)
	for {
		now, err := os.Readlink(exe)
		if err != nil || now != link {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still links to %s", exe, link)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reopenForWrite is the CVE-2019-5736 step from the host: reopen an O_PATH
// fd of a binary that no longer runs for writing, and write back the byte
// already at offset 0 (so nothing changes even if that succeeds). It
// returns "reopen: E" or "write: E" as the probe's reopen-exe does.
func reopenForWrite(t *testing.T, fd int) string {
	t.Helper()
	self := "/proc/self/fd/" + strconv.Itoa(fd)
	w, err := os.OpenFile(self, os.O_WRONLY, 0)
	if err != nil {
		return "reopen: " + errnoString(err)
	}
	defer w.Close()
	first := make([]byte, 1)
	r, err := os.Open(self)
	if err != nil {
		t.Fatalf("open %s for reading: %v", self, err)
	}
	_, err = r.ReadAt(first, 0)
	r.Close()
	if err != nil {
		t.Fatalf("read %s: %v", self, err)
	}
	_, err = w.WriteAt(first, 0)
	return "write: " + errnoString(err)
}

func errnoString(err error) string {
	if err == nil {
		return "OK"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

// exeRefused tells whether an outcome of reopen-exe means the binary could
// not be written.
func exeRefused(outcome string) bool {
	switch outcome {
	case "open: EACCES", "open: EPERM", "reopen: EROFS", "reopen: EPERM", "reopen: EACCES",
		"reopen: ETXTBSY", "write: EPERM":
		return true
	}
	return false
}

// TestRuntimeBinaryProtected is CVE-2019-5736: while a container is
// created its init is the runtime itself. Whoever holds its
// /proc/PID/exe (with O_PATH, which ETXTBSY does not stop) must not be able
// to write through it once the init has executed the container's process:
// neither the host nor a process in the container. The runtime's binary on
// the host stays the same throughout.
func TestRuntimeBinaryProtected(t *testing.T) {
	modes := []string{"default"}
	if !runtimeIsRunc {
		modes = append(modes, "memfd")
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			if mode == "memfd" {
				t.Setenv("GANTRY_OCI_SEAL", "memfd")
			}
			before := fileSHA256(t, runtimePath)

			b := bundle.New(t, bundle.Args("/probe", "sleep", "600"))
			mustRun(t, "create", "--bundle", b.Dir, b.ID)
			s := GetState(t, b.ID)
			if s.Status != "created" {
				t.Fatalf("status %q, want created", s.Status)
			}
			exe := "/proc/" + strconv.Itoa(s.PID) + "/exe"
			link, _ := os.Readlink(exe)
			t.Logf("init of a created container: %s -> %s", exe, link)

			// The host holds the init's binary ...
			hostFD, err := unix.Open(exe, unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatalf("open %s with O_PATH: %v", exe, err)
			}
			defer unix.Close(hostFD)
			// ... and so does a process in the container (pid 1 is the
			// runtime's init there).
			outFile := filepath.Join(t.TempDir(), "reopen-exe.out")
			out, err := os.Create(outFile)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			_, stderr, code := runCmd(t, func(cmd *exec.Cmd) func() {
				cmd.Stdout = out
				return nil
			}, "exec", "--detach", b.ID, "/probe", "reopen-exe", "1")
			if code != 0 {
				t.Fatalf("exec into a created container: exit %d: %s", code, stderr)
			}
			inside := waitLines(t, outFile, 1)
			t.Logf("in the container: %q", inside)

			mustRun(t, "start", b.ID)
			waitExecAway(t, s.PID, link)
			got := reopenForWrite(t, hostFD)
			t.Logf("from the host, after the init executed its process: %s", got)
			if !exeRefused(got) {
				t.Errorf("the created container's init binary, from the host: %s, want it refused", got)
			}
			if inside[0] == "opened" {
				inside = waitLines(t, outFile, 2)
				if !exeRefused(inside[1]) {
					t.Errorf("the runtime's binary, from the container: %s, want it refused", inside[1])
				}
			} else if !exeRefused(inside[0]) {
				t.Errorf("the runtime's binary, from the container: %s, want it refused", inside[0])
			}

			// The runtime's binary run inside the container through
			// /proc/self/exe as args[0], by exec and as the init. A
			// dynamically linked runtime may not even start there; either
			// way the host's binary must not change.
			_, stderr, code = Run(t, "exec", b.ID, "/proc/self/exe", "--version")
			t.Logf("exec /proc/self/exe --version: exit %d (%s)", code, strings.TrimSpace(stderr))
			b2 := bundle.New(t, bundle.Args("/proc/self/exe", "--version"))
			_, stderr, code = Run(t, "run", "--bundle", b2.Dir, b2.ID)
			t.Logf("run of /proc/self/exe --version: exit %d (%s)", code, strings.TrimSpace(stderr))
			if after := fileSHA256(t, runtimePath); after != before {
				t.Fatalf("the runtime binary %s changed: sha256 %s, was %s", runtimePath, after, before)
			}
		})
	}
}

// waitLines polls path until it holds n lines and returns them; a safety
// deadline, not a timing assertion.
func waitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if lines := strings.Split(strings.TrimSpace(string(data)), "\n"); strings.TrimSpace(string(data)) != "" && len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q, want %d lines", path, data, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNoHostFDInInit checks that fds the caller leaves open without
// close-on-exec reach neither a run nor a created-then-started container.
func TestNoHostFDInInit(t *testing.T) {
	prelude := "exec 5</etc/hostname 6</ 7<" + t.TempDir()
	t.Run("run", func(t *testing.T) {
		b := bundle.New(t)
		stdout, stderr, code := runCmd(t, viaShell(prelude), "run", "--bundle", b.Dir, b.ID)
		if code != 0 {
			t.Fatalf("run: exit %d: %s", code, stderr)
		}
		r, err := report.Parse([]byte(stdout))
		if err != nil {
			t.Fatal(err)
		}
		if got := fdList(r); !reflect.DeepEqual(got, []int{0, 1, 2}) {
			t.Errorf("container init fds = %v (%v), want [0 1 2]", got, r.FDs)
		}
	})
	t.Run("create", func(t *testing.T) {
		b := bundle.New(t)
		out, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		_, stderr, code := runCmd(t, func(cmd *exec.Cmd) func() {
			viaShell(prelude)(cmd)
			cmd.Stdout = out
			return nil
		}, "create", "--bundle", b.Dir, b.ID)
		if code != 0 {
			t.Fatalf("create: exit %d: %s", code, stderr)
		}
		mustRun(t, "start", b.ID)
		WaitStatus(t, b.ID, "stopped")
		data, err := os.ReadFile(out.Name())
		if err != nil {
			t.Fatal(err)
		}
		r, err := report.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		if got := fdList(r); !reflect.DeepEqual(got, []int{0, 1, 2}) {
			t.Errorf("container init fds = %v (%v), want [0 1 2]", got, r.FDs)
		}
	})
}

// TestInitCwdEscape is CVE-2024-21626 for create: process.cwd naming one
// of the runtime's fds must not leave the init outside the container.
func TestInitCwdEscape(t *testing.T) {
	if _, err := os.Stat("/probe"); err == nil {
		t.Skip("the host has a /probe: cannot tell the container's root from the host's")
	}
	script := `cd /proc/self/cwd 2>/dev/null || exit 0; readlink /proc/self/cwd; ls /proc/self/cwd/../../../../../../../..`
	for fd := 3; fd <= 12; fd++ {
		cwd := "/proc/self/fd/" + strconv.Itoa(fd)
		b := bundle.New(t, func(s *specs.Spec) {
			s.Process.Args = []string{"/bin/sh", "-c", script}
			s.Process.Cwd = cwd
		})
		stdout, _, code := runCmd(t, viaShell("exec 8</ 9<"+t.TempDir()), "run", "--bundle", b.Dir, b.ID)
		if code != 0 {
			continue // refused: fine
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		found := false
		for _, l := range lines[1:] {
			if l == "probe" {
				found = true
			}
		}
		if !found {
			t.Errorf("process.cwd %s: working directory %q escapes the container: its ../.. lists %q", cwd, lines[0], lines[1:])
		}
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	// Each check runs only when the host kernel has the file.
	var cmds, want []string
	check := func(hostPath, cmd, result string) {
		if hostPath != "" {
			if _, err := os.Stat(hostPath); err != nil {
				t.Logf("%s: not on this kernel, not checked", hostPath)
				return
			}
		}
		cmds = append(cmds, cmd)
		want = append(want, result)
	}
	devNull := `{"mode":438,"type":"char","uid":0,"gid":0,"major":1,"minor":3,"size":0}`
	masked := func() {
		check("/proc/keys", "wc -c < /proc/keys", "0")
		check("/proc/timer_list", "wc -c < /proc/timer_list", "0")
		check("/proc/kcore", "/probe stat /proc/kcore", devNull)
		check("/sys/firmware", "ls /sys/firmware | wc -l", "0")
		check("/proc/sys/kernel/hostname", "/probe try-open /proc/sys/kernel/hostname rdwr", "EROFS")
		check("/proc/sysrq-trigger", "/probe try-open /proc/sysrq-trigger rdwr", "EROFS")
		check("/proc/irq", "/probe try-open /proc/irq/default_smp_affinity rdwr", "EROFS")
	}
	masked()
	check("/proc/sys/kernel/hostname", "/probe try-open /proc/sys/kernel/hostname", "OK")
	// Without CAP_SYS_ADMIN every way to undo them fails.
	check("", "mount -o remount,rw /proc/sys 2>/dev/null; echo remount /proc/sys: $?", "remount /proc/sys: 1")
	check("", "mount -o remount,rw / 2>/dev/null; echo remount /: $?", "remount /: 1")
	check("", "mount -o remount,rw /proc/keys 2>/dev/null; echo remount /proc/keys: $?", "remount /proc/keys: 1")
	check("", "umount /proc/keys 2>/dev/null; echo umount /proc/keys: $?", "umount /proc/keys: 1")
	check("", "umount -l /proc/sys 2>/dev/null; echo umount /proc/sys: $?", "umount /proc/sys: 1")
	check("", "mount -t proc proc /mnt 2>/dev/null; echo mount proc: $?", "mount proc: 1")
	check("", "/probe syscall unshare-uts", "EPERM")
	// And they still hold afterwards.
	masked()

	b := bundle.New(t, func(s *specs.Spec) {
		s.Process.Args = []string{"/bin/sh", "-c", strings.Join(cmds, "; ")}
	})
	out := strings.Split(strings.TrimSpace(RunOutput(t, b)), "\n")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("in-container checks:\n got %q\nwant %q", out, want)
	}
}

func randomName(t *testing.T) string {
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	return "gantry-escape-" + hex.EncodeToString(r[:])
}

// TestSymlinkEscape: the rootfs's /etc is a symlink out of it, and mounts
// go through it. The runtime may refuse or resolve the destination inside
// the rootfs, but must create and mount nothing on the host.
func TestSymlinkEscape(t *testing.T) {
	for _, target := range []string{"/", "../../../../", "../../../../../../../../tmp"} {
		t.Run(target, func(t *testing.T) {
			name := randomName(t)
			src := t.TempDir()
			b := bundle.New(t, func(s *specs.Spec) {
				s.Mounts = append(s.Mounts,
					specs.Mount{Destination: "/etc/" + name, Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
					specs.Mount{Destination: "/etc/" + name + "-bind", Type: "bind", Source: src, Options: []string{"bind"}},
					specs.Mount{Destination: "/etc/" + name + "-dir/sub", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
				)
			})
			etc := filepath.Join(b.Rootfs(), "etc")
			if err := os.RemoveAll(etc); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, etc); err != nil {
				t.Fatal(err)
			}
			hostPaths := []string{}
			for _, dir := range []string{"/", "/tmp", filepath.Dir(b.Dir), b.Dir, filepath.Dir(filepath.Dir(b.Dir))} {
				for _, suffix := range []string{"", "-bind", "-dir"} {
					hostPaths = append(hostPaths, filepath.Join(dir, name+suffix))
				}
			}
			t.Cleanup(func() {
				for _, p := range hostPaths {
					unix.Unmount(filepath.Join(p, "sub"), unix.MNT_DETACH)
					unix.Unmount(p, unix.MNT_DETACH)
					os.Remove(filepath.Join(p, "sub"))
					os.Remove(p)
				}
			})
			stdout, stderr, code := Run(t, "run", "--bundle", b.Dir, b.ID)
			if code != 0 {
				checkOneErrorLine(t, stderr)
			} else if r, err := report.Parse([]byte(stdout)); err == nil {
				for _, m := range r.Mounts {
					if strings.Contains(m.Point, name) {
						t.Logf("in the container: %s mounted at %s", m.FSType, m.Point)
					}
				}
			}
			for _, p := range hostPaths {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("host path %s was created through the rootfs's /etc -> %s symlink", p, target)
				}
			}
			if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mi), name) {
				t.Errorf("a mount of %s appeared in the host's mount table", name)
			}
		})
	}
}

func TestContainerIDValidation(t *testing.T) {
	evil := randomName(t)
	ids := []string{"../" + evil, "a/b", "..", ".", "x/../" + evil, "/" + evil}
	b := bundle.New(t, bundle.Args("/probe", "sleep", "600"))
	for _, id := range ids {
		t.Run(id, func(t *testing.T) {
			for _, args := range [][]string{
				{"create", "--bundle", b.Dir, id},
				{"run", "--detach", "--bundle", b.Dir, id},
				{"state", id},
				{"exec", id, "/bin/true"},
				{"kill", id, "KILL"},
				{"delete", "--force", id},
			} {
				// Not Run: the suite's clean-up would take the id as a
				// path (and ".." as the cgroup root).
				_, stderr, code := runRuntime(t, Root(t), args...)
				if code == 0 {
					t.Errorf("%s: exit 0, want an error", strings.Join(args, " "))
					continue
				}
				checkOneErrorLine(t, stderr)
				if !strings.Contains(strings.ToLower(stderr), "id") {
					t.Errorf("%s: error %q does not name the id as the problem", args[0], stderr)
				}
			}
			ents, _ := os.ReadDir(Root(t))
			if len(ents) != 0 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("--root holds %q after refused ids", names)
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(Root(t)), evil)); err == nil {
				t.Errorf("%s created next to --root", evil)
			}
			if _, err := os.Lstat("/" + evil); err == nil {
				t.Errorf("/%s created", evil)
			}
			if d := cgroupDirs(b.ID); len(d) != 0 {
				t.Errorf("cgroups %q created for a refused id", d)
			}
		})
	}
}
