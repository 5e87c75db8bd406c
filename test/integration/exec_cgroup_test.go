package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestExecSubCgroup: exec --cgroup puts the process in a sub-cgroup of the
// container's (all hierarchies, or the named controllers only), and a
// sub-cgroup that does not exist is refused with nothing started.
func TestExecSubCgroup(t *testing.T) {
	b, s := startSleeper(t)
	dirs := cgroupDirs(b.ID)
	if len(dirs) == 0 {
		t.Skip("no cgroup directories for the container on this host")
	}
	var made []string
	t.Cleanup(func() {
		for _, d := range made {
			os.Remove(d)
		}
	})
	for _, d := range dirs {
		sub := filepath.Join(d, "sub")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		made = append(made, sub)
		if strings.Contains(d, "/cpuset/") {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, _ := os.ReadFile(filepath.Join(d, f))
				os.WriteFile(filepath.Join(sub, f), v, 0)
			}
		}
	}

	pidFile := filepath.Join(t.TempDir(), "pid")
	mustRun(t, "exec", "-d", "--pid-file", pidFile, "--cgroup", "pids:sub", b.ID, "/bin/sleep", "600")
	pid := readPidFile(t, pidFile)
	defer syscall.Kill(pid, syscall.SIGKILL)
	cg, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || !strings.Contains(f[2], b.ID) {
			continue
		}
		inSub := strings.HasSuffix(f[2], b.ID+"/sub")
		if (f[1] == "pids") != inSub {
			t.Errorf("--cgroup pids:sub: %q (only pids should be in sub)", line)
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
	waitProcs(t, b.ID, []int{s.PID})

	_, stderr, code := Run(t, "exec", "--cgroup", "nope", b.ID, "/bin/true")
	if code == 0 {
		t.Fatalf("exec --cgroup nope: exit 0, want an error")
	}
	checkOneErrorLine(t, stderr)
	if !runtimeIsRunc && !strings.Contains(stderr, "nope") {
		t.Errorf("error %q does not name the sub-cgroup", strings.TrimSpace(stderr))
	}
	checkUnchanged(t, b.ID, s, "running")
}
