package shim

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Launch starts a shim for o with `binary start ...` and returns its socket
// once the container is created. The shim is detached (new session, its
// own parent gone): it outlives the caller. A failed create is an error
// carrying the runtime's message, and leaves no state directory behind.
func Launch(ctx context.Context, binary string, o Options) (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, binary, append([]string{"start"}, o.Args()...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("start shim for %s/%s: %s", o.Namespace, o.ID, msg)
	}
	return strings.TrimSpace(string(out)), nil
}

// Detach is `gantry-shim start`: it re-executes the binary as `serve` in a
// new session with stdio on /dev/null and stderr on the state directory's
// shim.log, waits until the serving shim reports that the container is
// created, prints the socket path and returns. The serving shim is then
// orphaned and adopted by init (or the nearest subreaper), so no one but
// the kernel waits for it.
func Detach(o Options, args []string) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return fmt.Errorf("make state dir: %w", err)
	}
	if pid, err := readPid(filepath.Join(o.StateDir, PidName)); err == nil && shimAlive(pid, o.StateDir) {
		return fmt.Errorf("shim for %s/%s: already running as pid %d: %w", o.Namespace, o.ID, pid, errdefs.ErrAlreadyExists)
	}
	logf, err := os.OpenFile(filepath.Join(o.StateDir, ShimLogName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open shim log: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("ready pipe: %w", err)
	}
	defer r.Close()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	cmd := exec.Command(self, append([]string{"serve"}, args...)...)
	cmd.Stderr = logf
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	// A shim is idle nearly always: one P and an eager collector keep its
	// resident set small (docs/design/shim.md has the figures).
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "GOGC=20")
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start shim: %w", err)
	}
	w.Close()
	line, _ := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(line, "ok "):
		cmd.Process.Release()
		fmt.Println(strings.TrimPrefix(line, "ok "))
		return nil
	case strings.HasPrefix(line, "error: "):
		cmd.Wait()
		return fmt.Errorf("%s", strings.TrimPrefix(line, "error: "))
	default:
		err := cmd.Wait()
		os.RemoveAll(o.StateDir)
		return fmt.Errorf("shim exited before it was ready (%v)", err)
	}
}
