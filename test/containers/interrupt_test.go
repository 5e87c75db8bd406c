package containers

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterruptStreams: Ctrl-C (SIGINT) ends `logs -f` quietly, with exit
// status 0, as it ends `events`: docker's `logs -f` prints nothing on an
// interrupt either, where gantry printed "context canceled" and exited 1.
func TestInterruptStreams(t *testing.T) {
	e := newEnv(t)
	e.mustGantry("run", "-d", "--name", "talker", "busybox", "sh", "-c", counter)
	e.waitFor("talker running", func() bool { return e.ps()["talker"].State == "running" })
	for _, tc := range []struct {
		args []string
		// want is a line the command prints once it streams.
		want string
	}{
		// The counter writes a line every 0.2 s: "line 3" comes while
		// logs is following, after the lines already in the log.
		{[]string{"logs", "-f", "talker"}, "line 3"},
		// An event of the container, replayed (the first event, number
		// 1, is its /containers/create).
		{[]string{"events", "--since", "1"}, "/tasks/start"},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			code, errOut := e.interrupt(tc.args, tc.want)
			if code != 0 || errOut != "" {
				t.Errorf("gantry %s interrupted with SIGINT: exit %d, stderr %q; want 0 and nothing on stderr",
					strings.Join(tc.args, " "), code, errOut)
			}
		})
	}
	e.mustGantry("rm", "-f", "talker")
	e.assertClean()
}

// interrupt runs gantry with args until it has printed a line containing
// want, sends it SIGINT and returns its exit status and stderr.
func (e *env) interrupt(args []string, want string) (int, string) {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "gantry"), append([]string{"--address", e.sock}, args...)...)
	cmd.Env = append(os.Environ(), "GANTRY_ADDRESS=", "GANTRY_NAMESPACE=")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan error, 1)
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			if !found && strings.Contains(sc.Text(), want) {
				found = true
				close(seen)
			}
		}
		io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	// Also if the test fails below: the command does not outlive it.
	defer cmd.Process.Kill()
	select {
	case <-seen:
	case err := <-exited:
		e.t.Fatalf("gantry %s ended before printing %q: %v, stderr %q", strings.Join(args, " "), want, err, errb.String())
	case <-time.After(time.Minute):
		e.t.Fatalf("gantry %s did not print %q within a minute", strings.Join(args, " "), want)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		e.t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(time.Minute):
		e.t.Fatalf("gantry %s did not end within a minute of SIGINT", strings.Join(args, " "))
	}
	return cmd.ProcessState.ExitCode(), errb.String()
}
