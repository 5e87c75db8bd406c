package identity

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/oci/linux/capability"
)

const (
	busybox     = "/bin/busybox"
	scenarioEnv = "GANTRY_IDENTITY_TEST_USER"
	capsEnv     = "GANTRY_IDENTITY_TEST_CAPS"
	marker      = "--- exec ---"
)

// TestMain doubles as the child of the tests: with scenarioEnv set, the test
// binary switches to that user, applies the capabilities in capsEnv, prints
// the uid of every one of its threads and execs busybox to print its status.
func TestMain(m *testing.M) {
	if u, ok := os.LookupEnv(scenarioEnv); ok {
		os.Exit(child(u))
	}
	os.Exit(m.Run())
}

func child(userJSON string) int {
	runtime.LockOSThread()
	var u specs.User
	if err := json.Unmarshal([]byte(userJSON), &u); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var c *specs.LinuxCapabilities
	if err := json.Unmarshal([]byte(os.Getenv(capsEnv)), &c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := Switch(u); err != nil {
		fmt.Fprintln(os.Stderr, "switch:", err)
		return 3
	}
	if err := capability.Apply(c); err != nil {
		fmt.Fprintln(os.Stderr, "capabilities:", err)
		return 3
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Uid:") || strings.HasPrefix(l, "Gid:") {
				fmt.Println("task", l)
			}
		}
	}
	fmt.Println(marker)
	err := syscall.Exec(busybox, []string{"cat", "/proc/self/status"}, []string{})
	fmt.Fprintln(os.Stderr, "exec:", err)
	return 2
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("%s not available", busybox)
	}
}

// runChild returns the per-thread id lines before execve and the fields of
// /proc/self/status after it.
func runChild(t *testing.T, u specs.User, c *specs.LinuxCapabilities, attr *syscall.SysProcAttr) (tasks []string, status map[string]string, err error) {
	t.Helper()
	uj, _ := json.Marshal(u)
	cj, _ := json.Marshal(c)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{scenarioEnv + "=" + string(uj), capsEnv + "=" + string(cj)}
	cmd.SysProcAttr = attr
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, rerr := cmd.Output()
	if rerr != nil {
		return nil, nil, fmt.Errorf("%v: %s", rerr, stderr.String())
	}
	pre, post, ok := strings.Cut(string(out), marker)
	if !ok {
		t.Fatalf("child output lacks the exec marker:\n%s", out)
	}
	for _, l := range strings.Split(strings.TrimSpace(pre), "\n") {
		if l != "" {
			tasks = append(tasks, l)
		}
	}
	status = map[string]string{}
	for _, l := range strings.Split(post, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			status[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return tasks, status, nil
}

func TestSwitch(t *testing.T) {
	needRoot(t)
	umask := uint32(0o027)
	u := specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{2000, 3000}, Umask: &umask}
	c := &specs.LinuxCapabilities{
		Bounding:    []string{"CAP_NET_BIND_SERVICE", "CAP_KILL"},
		Effective:   []string{"CAP_NET_BIND_SERVICE", "CAP_KILL"},
		Permitted:   []string{"CAP_NET_BIND_SERVICE", "CAP_KILL"},
		Inheritable: []string{"CAP_NET_BIND_SERVICE"},
		Ambient:     []string{"CAP_NET_BIND_SERVICE"},
	}
	tasks, st, err := runChild(t, u, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) < 2 {
		t.Fatalf("child printed no per-thread ids: %q", tasks)
	}
	for _, l := range tasks {
		if !strings.Contains(l, "1000\t1000\t1000\t1000") && !strings.Contains(l, "1001\t1001\t1001\t1001") {
			t.Errorf("a thread was not switched: %q", l)
		}
	}
	want := map[string]string{
		"Uid":    "1000 1000 1000 1000",
		"Gid":    "1001 1001 1001 1001",
		"Groups": "2000 3000",
		"Umask":  "0027",
		// Only the ambient capability survives execve for a non-root uid.
		"CapInh": "0000000000000400",
		"CapPrm": "0000000000000400",
		"CapEff": "0000000000000400",
		"CapAmb": "0000000000000400",
		"CapBnd": "0000000000000420",
	}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("%s = %q, want %q", k, st[k], v)
		}
	}
}

func TestSwitchNoGroups(t *testing.T) {
	needRoot(t)
	_, st, err := runChild(t, specs.User{UID: 65534, GID: 65534}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st["Uid"] != "65534 65534 65534 65534" || st["Gid"] != "65534 65534 65534 65534" || st["Groups"] != "" || st["CapPrm"] != "0000000000000000" {
		t.Fatalf("status after switch to 65534: Uid %q Gid %q Groups %q CapPrm %q", st["Uid"], st["Gid"], st["Groups"], st["CapPrm"])
	}
}

// In a user namespace whose setgroups is denied, a user without additional
// gids must still work, and one with them must fail naming the field.
func TestSwitchSetgroupsDenied(t *testing.T) {
	needRoot(t)
	attr := &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		GidMappingsEnableSetgroups: false,
	}
	_, st, err := runChild(t, specs.User{}, nil, attr)
	if err != nil {
		if strings.Contains(err.Error(), "operation not permitted") && !strings.Contains(err.Error(), "switch:") {
			t.Skipf("cannot create a user namespace here: %v", err)
		}
		t.Fatal(err)
	}
	if st["Uid"] != "0 0 0 0" {
		t.Fatalf("Uid = %q", st["Uid"])
	}
	_, _, err = runChild(t, specs.User{AdditionalGids: []uint32{0}}, nil, attr)
	if err == nil || !strings.Contains(err.Error(), "process.user.additionalGids: setgroups [0]: operation not permitted") {
		t.Fatalf("Switch with additional gids under setgroups deny: %v", err)
	}
}
