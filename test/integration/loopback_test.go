package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/test/bundle"
)

// loScript prints what the container sees of its loopback interface: the
// flags sysfs reports (0x9 = IFF_UP|IFF_LOOPBACK, 0x8 down), its IPv4
// address, and what a TCP connection to a closed port of 127.0.0.1 gets:
// "Connection refused" when lo is up, "Network is unreachable" when down.
const loScript = `echo "flags=$(cat /sys/class/net/lo/flags)"; ip -4 -o addr show dev lo; nc 127.0.0.1 1 </dev/null 2>&1; exit 0`

// checkLo fails t unless out (from loScript) shows lo up, with 127.0.0.1,
// when up is true, or down, without an address, otherwise.
func checkLo(t *testing.T, out string, up bool) {
	t.Helper()
	flags, conn := "flags=0x8", "Network is unreachable"
	if up {
		flags, conn = "flags=0x9", "Connection refused"
	}
	addr := strings.Contains(out, "inet 127.0.0.1/8")
	if !strings.Contains(out, flags+"\n") || addr != up || !strings.Contains(out, conn) {
		t.Errorf("loopback seen in the container:\n%s\nwant %s, 127.0.0.1 present %v, a connection to 127.0.0.1 %q", out, flags, up, conn)
	}
}

// newNetNS makes a network namespace that no process is in, bound on a
// file in a temp dir, and returns that file; it is unmounted at the end of
// t. Its lo is down, as in any new network namespace.
func newNetNS(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		// The thread stays locked and in the new namespace: it ends with
		// this goroutine instead of running other Go code there.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind it on %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount network namespace %s: %v", path, err)
		}
	})
	return path
}

// withEnv returns a runCmd setup that adds env (empty strings left out)
// to the runtime's environment.
func withEnv(env ...string) func(*exec.Cmd) func() {
	return func(cmd *exec.Cmd) func() {
		cmd.Env = os.Environ()
		for _, e := range env {
			if e != "" {
				cmd.Env = append(cmd.Env, e)
			}
		}
		return nil
	}
}

// TestRootLoopbackUp: a container with a new network namespace has lo up
// with 127.0.0.1 (as with runc, crun and docker), with or without a user
// namespace; one that joins a namespace by path finds lo as it was (down
// here), and exec into it does not bring it up either.
func TestRootLoopbackUp(t *testing.T) {
	t.Run("new", func(t *testing.T) {
		b := bundle.New(t, bundle.Args("/bin/sh", "-c", loScript))
		checkLo(t, RunOutput(t, b), true)
	})
	t.Run("new with user namespace", func(t *testing.T) {
		b := bundle.New(t, bundle.Args("/bin/sh", "-c", loScript), func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		})
		openPath(t, b.Rootfs())
		checkLo(t, RunOutput(t, b), true)
	})
	t.Run("joined by path", func(t *testing.T) {
		ns := newNetNS(t)
		joinNet := func(s *specs.Spec) {
			for i := range s.Linux.Namespaces {
				if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
					s.Linux.Namespaces[i].Path = ns
				}
			}
		}
		b := bundle.New(t, bundle.Args("/bin/sh", "-c", loScript), joinNet)
		checkLo(t, RunOutput(t, b), false)

		sb, _ := startSleeper(t, joinNet)
		for _, env := range []string{"", "GANTRY_OCI_EXEC=go"} {
			out, serr, code := runCmd(t, withEnv(env), "exec", sb.ID, "/bin/sh", "-c", loScript)
			if code != 0 {
				t.Fatalf("exec (%s): exit %d: %s", env, code, serr)
			}
			checkLo(t, out, false)
		}
	})
}
