package ociclient

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func TestParseLogError(t *testing.T) {
	tests := []struct {
		name, log, want string
	}{
		{"empty", "", ""},
		{"no error", `{"level":"warning","msg":"w"}` + "\n", ""},
		{"last error wins", `{"level":"error","msg":"first"}` + "\n" + `{"level":"info","msg":"i"}` + "\n" + `{"level":"error","msg":"second"}` + "\n", "second"},
		{"fatal", `{"level":"fatal","msg":"boom"}`, "boom"},
		{"error field appended", `{"level":"error","msg":"exec failed","error":"no such file"}`, "exec failed: no such file"},
		{"garbage lines skipped", "not json\n" + `{"level":"error","msg":"ok"}` + "\n{broken", "ok"},
		{"upper case level", `{"level":"ERROR","msg":"caps"}`, "caps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseLogError(strings.NewReader(tt.log)); got != tt.want {
				t.Fatalf("parseLogError = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorKind(t *testing.T) {
	tests := []struct {
		msg      string
		notFound bool
	}{
		{`container "x" does not exist: not found`, true},
		{"container not found", true},
		{"permission denied", false},
	}
	for _, tt := range tests {
		err := &Error{Verb: "state", ExitCode: 1, Message: tt.msg}
		if got := errors.Is(err, errdefs.ErrNotFound); got != tt.notFound {
			t.Errorf("%q: errors.Is(ErrNotFound) = %v, want %v", tt.msg, got, tt.notFound)
		}
	}
}

// fakeRuntime writes a shell script that acts as a runtime: it records its
// arguments in args.txt and then runs body with "$verb" set to the runtime
// verb (the first argument after the global flags).
func fakeRuntime(t *testing.T, body string) (*Runtime, string) {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
echo "$@" > ` + dir + `/args.txt
log=
while [ $# -gt 0 ]; do
	case "$1" in
	--log) log="$2"; shift 2 ;;
	--log-format|--root) shift 2 ;;
	--debug) shift ;;
	*) break ;;
	esac
done
verb="$1"; shift
` + body + "\n"
	p := filepath.Join(dir, "runtime")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return &Runtime{Binary: p, Root: filepath.Join(dir, "root")}, dir
}

func TestRuntimeErrorFromLog(t *testing.T) {
	r, dir := fakeRuntime(t, `echo '{"level":"info","msg":"starting"}' >> "$log"
echo '{"level":"error","msg":"container \"c1\" does not exist: not found"}' >> "$log"
echo "stderr noise" >&2
exit 1`)
	r.Log = filepath.Join(dir, "log.json")
	// An earlier call's error must not be reported again.
	if err := os.WriteFile(r.Log, []byte(`{"level":"error","msg":"old"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := r.Start(context.Background(), "c1")
	var re *Error
	if !errors.As(err, &re) {
		t.Fatalf("Start = %v, want *Error", err)
	}
	if re.Message != `container "c1" does not exist: not found` || re.ExitCode != 1 || re.Verb != "start" {
		t.Fatalf("error = %+v", re)
	}
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("error %v is not ErrNotFound", err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args.txt"))
	for _, want := range []string{"--root " + r.Root, "--log " + r.Log, "--log-format json", "start c1"} {
		if !strings.Contains(string(args), want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
}

func TestRuntimeErrorFromStderr(t *testing.T) {
	r, _ := fakeRuntime(t, `echo "first" >&2; echo "the real reason" >&2; exit 3`)
	err := r.Kill(context.Background(), "c1", syscall.SIGTERM, true)
	var re *Error
	if !errors.As(err, &re) || re.Message != "the real reason" || re.ExitCode != 3 {
		t.Fatalf("Kill = %#v, want the last stderr line and exit 3", err)
	}
}

func TestRuntimeTimeoutKillsGroup(t *testing.T) {
	r, dir := fakeRuntime(t, `sleep 1000 &
echo $! > `+"$(dirname $0)"+`/child.pid
wait`)
	r.Timeout = 300 * time.Millisecond
	err := r.Pause(context.Background(), "c1")
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("Pause = %v, want ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), "pause c1") {
		t.Errorf("error %q does not name the call", err)
	}
	b, rerr := os.ReadFile(filepath.Join(dir, "child.pid"))
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// The grandchild was in the runtime's process group: it must be gone
	// (or a zombie about to be reaped by init) soon after.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d of the hung runtime's group survives the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRuntimeContextCancel(t *testing.T) {
	r, _ := fakeRuntime(t, `exec sleep 1000`)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if err := r.Resume(ctx, "c1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Resume = %v, want context.Canceled", err)
	}
}

func TestStateParse(t *testing.T) {
	r, _ := fakeRuntime(t, `echo '{"ociVersion":"1.3.0","id":"c1","status":"running","pid":42,"bundle":"/b","created":"2024-01-02T03:04:05Z"}'`)
	s, err := r.State(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "c1" || s.Status != "running" || s.Pid != 42 || s.Bundle != "/b" || s.Created.Year() != 2024 {
		t.Fatalf("State = %+v", s)
	}
}

func TestPsStatsUpdate(t *testing.T) {
	r, dir := fakeRuntime(t, `case "$verb" in
ps) echo '[1,2,3]' ;;
events) echo '{"type":"stats","id":"c1","data":{"pids":{"current":3}}}' ;;
update) cat > "$(dirname $0)/stdin.json" ;;
esac`)
	ctx := context.Background()
	pids, err := r.Ps(ctx, "c1")
	if err != nil || len(pids) != 3 || pids[2] != 3 {
		t.Fatalf("Ps = %v, %v", pids, err)
	}
	data, err := r.Stats(ctx, "c1")
	if err != nil || string(data) != `{"pids":{"current":3}}` {
		t.Fatalf("Stats = %s, %v", data, err)
	}
	res := []byte(`{"pids":{"limit":10}}`)
	if err := r.Update(ctx, "c1", res); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "stdin.json"))
	if string(got) != string(res) {
		t.Fatalf("update stdin = %q, want %q", got, res)
	}
	if err := r.Update(ctx, "c1", []byte("{")); err == nil {
		t.Fatal("Update with invalid JSON succeeded")
	}
}

func TestReadPidFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		content string
		want    int
		ok      bool
	}{
		{"123", 123, true},
		{"123\n", 123, true},
		{"", 0, false},
		{"abc", 0, false},
		{"-1", 0, false},
	}
	for i, tt := range tests {
		p := filepath.Join(dir, strconv.Itoa(i))
		os.WriteFile(p, []byte(tt.content), 0o644)
		got, err := ReadPidFile(p)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ReadPidFile(%q) = %d, %v", tt.content, got, err)
		}
	}
}

// TestRunDetachedArgs: RunDetached is one `run --detach` call with
// create's flags, the container's stdio passed to the runtime.
func TestRunDetachedArgs(t *testing.T) {
	r, dir := fakeRuntime(t, `[ "$verb" = run ] || exit 3; echo out-from-runtime`)
	out := filepath.Join(dir, "stdout")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = r.RunDetached(context.Background(), "c1", CreateOptions{
		Bundle: "/b", PidFile: "/p", ConsoleSocket: "/s", NoPivot: true, IO: &IO{Stdout: f},
	})
	if err != nil {
		t.Fatal(err)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args.txt"))
	if !strings.HasSuffix(strings.TrimSpace(string(args)), "run --detach --bundle /b --pid-file /p --console-socket /s --no-pivot c1") {
		t.Fatalf("runtime args %q", args)
	}
	if got, _ := os.ReadFile(out); string(got) != "out-from-runtime\n" {
		t.Fatalf("stdout given to the runtime got %q", got)
	}
	if err := r.RunDetached(context.Background(), "c1", CreateOptions{}); err == nil {
		t.Fatal("RunDetached without a bundle succeeded")
	}
}
