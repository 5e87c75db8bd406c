package containers

import (
	"bufio"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startRun starts `gantry run ARGS...` and returns it once the container
// has printed its first line ("ready"); the rest of stdout is collected
// into the returned builder until the CLI exits (wait on done).
func (e *env) startRun(t *testing.T, args ...string) (cmd *exec.Cmd, out *strings.Builder, done chan error) {
	t.Helper()
	cmd = exec.Command(filepath.Join(binDir, "gantry"), append([]string{"--address", e.sock, "run"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	rd := bufio.NewReader(stdout)
	first := make(chan string, 1)
	go func() {
		line, _ := rd.ReadString('\n')
		first <- line
	}()
	select {
	case line := <-first:
		if line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("gantry run %v: first line %q, want ready (stderr %q)", args, line, errb.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("gantry run %v: no output within 2 minutes (stderr %q)", args, errb.String())
	}
	out = &strings.Builder{}
	done = make(chan error, 1)
	go func() {
		io.Copy(out, rd)
		done <- cmd.Wait()
	}()
	return cmd, out, done
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestRunSigProxy: SIGINT and SIGTERM sent to a foreground `gantry run`
// reach the container (docker's --sig-proxy, on by default), whose trap
// decides the exit code; with --sig-proxy=false the signal ends the CLI
// and the container goes on running.
func TestRunSigProxy(t *testing.T) {
	e := newEnv(t)
	const script = `trap "echo got INT; exit 3" INT; trap "echo got TERM; exit 4" TERM; echo ready; while true; do sleep 0.1; done`
	for _, tt := range []struct {
		sig  syscall.Signal
		code int
		out  string
	}{
		{syscall.SIGINT, 3, "got INT\n"},
		{syscall.SIGTERM, 4, "got TERM\n"},
	} {
		cmd, out, done := e.startRun(t, "--rm", "busybox", "sh", "-c", script)
		cmd.Process.Signal(tt.sig)
		select {
		case err := <-done:
			if code := exitCode(err); code != tt.code || out.String() != tt.out {
				t.Errorf("%v: exit %d, stdout %q; want %d, %q", tt.sig, code, out.String(), tt.code, tt.out)
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("%v: gantry run did not end within 2 minutes of the signal", tt.sig)
		}
	}

	cmd, _, done := e.startRun(t, "--sig-proxy=false", "--name", "noproxy", "busybox", "sh", "-c", script)
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if code := exitCode(err); code == 0 || code == 3 {
			t.Errorf("--sig-proxy=false: exit %d after SIGINT, want the CLI's own failure", code)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("--sig-proxy=false: gantry run did not end within 2 minutes of SIGINT")
	}
	if out := e.mustGantry("ps", "-q"); strings.TrimSpace(out) == "" {
		t.Error("--sig-proxy=false: the container stopped with the CLI; it should go on running")
	}
	e.mustGantry("rm", "-f", "noproxy")
	e.assertClean()
}
