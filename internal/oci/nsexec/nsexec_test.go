package nsexec

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// When the C constructor has run (the env var is set), this test binary is
// the process it left behind: report what it sees on the socket and exit.
func TestMain(m *testing.M) {
	if fd := os.Getenv(EnvInitFD); fd != "" {
		n, _ := strconv.Atoi(fd)
		f := os.NewFile(uintptr(n), "sock")
		uts, _ := os.Readlink("/proc/self/ns/uts")
		user, _ := os.Readlink("/proc/self/ns/user")
		uidMap, _ := os.ReadFile("/proc/self/uid_map")
		dumpable, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		fmt.Fprintf(f, "getpid=%d uid=%d uts=%s user=%s map=%s dumpable=%d\n", os.Getpid(), os.Getuid(), uts, user, strings.Join(strings.Fields(string(uidMap)), ","), dumpable)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// bootstrap starts this test binary as a bootstrap process and drives it.
func bootstrap(t *testing.T, b *Bootstrap, usermap func(int) error) (pid int, report string, err error) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	parent := os.NewFile(uintptr(fds[0]), "parent")
	child := os.NewFile(uintptr(fds[1]), "child")
	defer parent.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{EnvInitFD + "=3"}
	cmd.ExtraFiles = []*os.File{child}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	defer cmd.Wait()
	rd := bufio.NewReader(parent)
	pid, err = Drive(parent, rd, b, usermap)
	if err != nil {
		return 0, "", err
	}
	if b.Fork {
		t.Cleanup(func() {
			var ws unix.WaitStatus
			unix.Wait4(pid, &ws, 0, nil) // CLONE_PARENT: our child
		})
	}
	line, err := rd.ReadString('\n')
	if err != nil {
		t.Fatalf("read report: %v", err)
	}
	return pid, strings.TrimSpace(line), nil
}

func TestBootstrapNewNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	hostUTS, _ := os.Readlink("/proc/self/ns/uts")
	pid, report, err := bootstrap(t, &Bootstrap{CloneFlags: unix.CLONE_NEWUTS | unix.CLONE_NEWPID | unix.CLONE_NEWNS, Fork: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(report, "getpid=1 ") {
		t.Errorf("init is not PID 1 of a new PID namespace: %s", report)
	}
	if strings.Contains(report, "uts="+hostUTS) {
		t.Errorf("init shares the host UTS namespace: %s", report)
	}
	if pid <= 1 {
		t.Errorf("reported pid %d", pid)
	}
}

func TestBootstrapUserNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	mapped := 0
	_, report, err := bootstrap(t, &Bootstrap{CloneFlags: unix.CLONE_NEWUSER | unix.CLONE_NEWUTS}, func(pid int) error {
		mapped = pid
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/uid_map", pid), []byte("0 100000 65536"), 0); err != nil {
			return err
		}
		return os.WriteFile(fmt.Sprintf("/proc/%d/gid_map", pid), []byte("0 100000 65536"), 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if mapped == 0 {
		t.Fatal("usermap was never requested")
	}
	if !strings.Contains(report, "uid=0 ") || !strings.Contains(report, "map=0,100000,65536") {
		t.Errorf("user namespace not mapped as asked: %s", report)
	}
}

func TestBootstrapJoinByPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	// a namespace to join: a sleeping child in its own UTS namespace
	holder := exec.Command("/bin/sleep", "100")
	holder.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWUTS}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	path := fmt.Sprintf("/proc/%d/ns/uts", holder.Process.Pid)
	want, _ := os.Readlink(path)
	_, report, err := bootstrap(t, &Bootstrap{Joins: []Join{{"uts", path}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(report, "uts="+want) {
		t.Errorf("did not join %s (%s): %s", path, want, report)
	}
}

func TestBootstrapErrors(t *testing.T) {
	_, _, err := bootstrap(t, &Bootstrap{Joins: []Join{{"net", "/nonexistent/ns/net"}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/ns/net") || !strings.Contains(err.Error(), "No such file") {
		t.Fatalf("join of a missing path: err = %v, want one naming the path", err)
	}
	_, _, err = bootstrap(t, &Bootstrap{Joins: []Join{{"bogus", "/proc/self/ns/net"}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "unknown namespace type bogus") {
		t.Fatalf("unknown type: err = %v", err)
	}
}

// TestBootstrapNotDumpable: the process that joins the container's
// namespaces must not be ptrace-able or have readable /proc files from
// the container (CVE-2016-9962) from its first instruction on.
func TestBootstrapNotDumpable(t *testing.T) {
	for _, fork := range []bool{false, true} {
		b := &Bootstrap{Fork: fork}
		if fork {
			if os.Geteuid() != 0 {
				continue
			}
			b.CloneFlags = unix.CLONE_NEWPID
		}
		_, report, err := bootstrap(t, b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(report, " dumpable=0") {
			t.Errorf("fork %v: %s, want dumpable=0", fork, report)
		}
	}
}
