package capability

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	busybox     = "/bin/busybox"
	scenarioEnv = "GANTRY_CAPABILITY_TEST_CONFIG"
	lastEnv     = "GANTRY_CAPABILITY_TEST_LAST"
	marker      = "--- exec ---"
)

// TestMain doubles as the child of the root tests: with scenarioEnv set, the
// test binary applies that config on its locked thread, prints its thread's
// status, and execs busybox to print the status after execve.
func TestMain(m *testing.M) {
	if cfg, ok := os.LookupEnv(scenarioEnv); ok {
		os.Exit(child(cfg))
	}
	os.Exit(m.Run())
}

func child(cfg string) int {
	runtime.LockOSThread()
	var c *specs.LinuxCapabilities
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if v := os.Getenv(lastEnv); v != "" {
		n, _ := strconv.Atoi(v)
		lastCap = func() (int, error) { return n, nil }
	}
	if err := Apply(c); err != nil {
		fmt.Fprintln(os.Stderr, "apply:", err)
		return 3
	}
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	os.Stdout.Write(b)
	fmt.Println(marker)
	err = syscall.Exec(busybox, []string{"cat", "/proc/self/status"}, []string{})
	fmt.Fprintln(os.Stderr, "exec:", err)
	return 2
}

type status struct{ inh, prm, eff, bnd, amb uint64 }

func parseStatus(t *testing.T, s string) status {
	t.Helper()
	var st status
	fields := map[string]*uint64{"CapInh": &st.inh, "CapPrm": &st.prm, "CapEff": &st.eff, "CapBnd": &st.bnd, "CapAmb": &st.amb}
	seen := 0
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if p := fields[k]; ok && p != nil {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("parse %q: %v", line, err)
			}
			*p = n
			seen++
		}
	}
	if seen != len(fields) {
		t.Fatalf("status lacks capability lines:\n%s", s)
	}
	return st
}

func mask(t *testing.T, names ...string) uint64 {
	t.Helper()
	var m uint64
	for _, n := range names {
		c, err := Parse(n)
		if err != nil {
			t.Fatal(err)
		}
		m |= 1 << c
	}
	return m
}

// runChild applies c in a re-executed test binary and returns the thread's
// sets just before execve and the process's sets after it.
func runChild(t *testing.T, c *specs.LinuxCapabilities, extraEnv []string, attr *syscall.SysProcAttr) (before, after status, err error) {
	t.Helper()
	cfg, jerr := json.Marshal(c)
	if jerr != nil {
		t.Fatal(jerr)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append([]string{scenarioEnv + "=" + string(cfg)}, extraEnv...)
	cmd.SysProcAttr = attr
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, rerr := cmd.Output() // waits: the child is gone when this returns
	if rerr != nil {
		return before, after, fmt.Errorf("%v: %s", rerr, stderr.String())
	}
	pre, post, ok := strings.Cut(string(out), marker)
	if !ok {
		t.Fatalf("child output lacks the exec marker:\n%s", out)
	}
	return parseStatus(t, pre), parseStatus(t, post), nil
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

func TestApplyNilDropsEverything(t *testing.T) {
	needRoot(t)
	before, after, err := runChild(t, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if before != (status{}) {
		t.Errorf("thread sets after Apply(nil) = %+v, want all empty", before)
	}
	if after != (status{}) {
		t.Errorf("sets after execve = %+v, want all empty", after)
	}
}

func TestApplySets(t *testing.T) {
	needRoot(t)
	c := &specs.LinuxCapabilities{
		Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETPCAP", "CAP_AUDIT_WRITE"},
		Effective:   []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"},
		Permitted:   []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
		Inheritable: []string{"CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"},
		Ambient:     []string{"CAP_NET_BIND_SERVICE"},
	}
	// The child starts with CAP_SYS_ADMIN inheritable and ambient: Apply
	// must not let anything the config did not grant survive.
	attr := &syscall.SysProcAttr{AmbientCaps: []uintptr{21}}
	before, after, err := runChild(t, c, nil, attr)
	if err != nil {
		t.Fatal(err)
	}
	want := status{
		bnd: mask(t, c.Bounding...),
		eff: mask(t, c.Effective...),
		prm: mask(t, c.Permitted...),
		inh: mask(t, c.Inheritable...),
		amb: mask(t, c.Ambient...),
	}
	if before != want {
		t.Errorf("thread sets after Apply = %+v, want %+v", before, want)
	}
	if after.bnd != want.bnd || after.inh != want.inh {
		t.Errorf("after execve bounding %#x inheritable %#x, want %#x and %#x", after.bnd, after.inh, want.bnd, want.inh)
	}
	if after.amb&^want.amb != 0 {
		t.Errorf("after execve ambient %#x has more than %#x", after.amb, want.amb)
	}
	// uid 0 gains bounding|inheritable on execve; nothing else.
	if after.prm&^(want.bnd|want.inh) != 0 || after.eff&^after.prm != 0 {
		t.Errorf("after execve permitted %#x effective %#x exceed bounding|inheritable %#x", after.prm, after.eff, want.bnd|want.inh)
	}
}

func TestApplyEffectiveNotPermitted(t *testing.T) {
	needRoot(t)
	c := &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL"}}
	_, _, err := runChild(t, c, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "process.capabilities.effective: [CAP_KILL] not in the permitted set") {
		t.Fatalf("Apply with effective outside permitted: %v", err)
	}
}

func TestApplyUnknownName(t *testing.T) {
	needRoot(t)
	c := &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_BOGUS"}}
	_, _, err := runChild(t, c, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `process.capabilities.bounding[1]: unknown capability "CAP_BOGUS"`) {
		t.Fatalf("Apply with an unknown name: %v", err)
	}
}

func TestApplyIgnoresCapsAboveLast(t *testing.T) {
	needRoot(t)
	// Pretend the kernel stops at CAP_PERFMON (38): CAP_BPF and
	// CAP_CHECKPOINT_RESTORE must be ignored, not be an error.
	c := &specs.LinuxCapabilities{
		Bounding:  []string{"CAP_KILL", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"},
		Permitted: []string{"CAP_KILL", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"},
		Effective: []string{"CAP_KILL", "CAP_BPF"},
	}
	before, _, err := runChild(t, c, []string{lastEnv + "=38"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	low := uint64(1)<<39 - 1
	if before.prm&low != mask(t, "CAP_KILL") || before.bnd&low != mask(t, "CAP_KILL") || before.eff&low != mask(t, "CAP_KILL") {
		t.Fatalf("sets after Apply with last=38: %+v", before)
	}
}
