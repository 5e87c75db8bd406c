package shim

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Launch starts a shim for o (`binary serve ...` in a new session) and
// returns its socket once the container is created. The shim is detached
// from the caller's session and outlives it; while the caller lives it
// reaps the shim when it exits, and after the caller dies init adopts it.
// Starting `serve` directly (rather than through `gantry-shim start`, which
// re-executes itself) saves one process start-up per container. A failed
// create is an error carrying the runtime's message, and leaves no state
// directory behind.
func Launch(ctx context.Context, binary string, o Options) (string, error) {
	if err := o.Validate(); err != nil {
		return "", err
	}
	cmd, socket, err := spawnServe(binary, o, o.Args())
	if err != nil {
		return "", fmt.Errorf("start shim for %s/%s: %w", o.Namespace, o.ID, err)
	}
	go cmd.Wait() // reap it whenever it exits
	return socket, nil
}

// Detach is `gantry-shim start`: it starts the binary as `serve` (see
// spawnServe), prints the socket path and returns. The serving shim is then
// orphaned and adopted by init (or the nearest subreaper), so no one but
// the kernel waits for it.
func Detach(o Options, args []string) error {
	if err := o.Validate(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	cmd, socket, err := spawnServe(self, o, args)
	if err != nil {
		return err
	}
	cmd.Process.Release()
	fmt.Println(socket)
	return nil
}

// spawnServe starts `binary serve args...` in a new session with stdio on
// /dev/null and stderr on the state directory's shim.log, and waits until
// the serving shim reports that the container is created ("ok SOCKET" on
// its ready pipe) or why it is not.
func spawnServe(binary string, o Options, args []string) (*exec.Cmd, string, error) {
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("make state dir: %w", err)
	}
	if pid, err := readPid(filepath.Join(o.StateDir, PidName)); err == nil && shimAlive(pid, o.StateDir) {
		return nil, "", fmt.Errorf("shim for %s/%s: already running as pid %d: %w", o.Namespace, o.ID, pid, errdefs.ErrAlreadyExists)
	}
	logf, err := os.OpenFile(filepath.Join(o.StateDir, ShimLogName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("open shim log: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, "", fmt.Errorf("ready pipe: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(binary, append([]string{"serve"}, args...)...)
	cmd.Stderr = logf
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/"
	// A shim is idle nearly always: one P and an eager collector keep its
	// resident set small (docs/design/shim.md has the figures).
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "GOGC=20")
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, "", fmt.Errorf("start shim: %w", err)
	}
	w.Close()
	line, _ := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case strings.HasPrefix(line, "ok "):
		return cmd, strings.TrimPrefix(line, "ok "), nil
	case strings.HasPrefix(line, "error: "):
		cmd.Wait()
		return nil, "", fmt.Errorf("%s", strings.TrimPrefix(line, "error: "))
	default:
		err := cmd.Wait()
		os.RemoveAll(o.StateDir)
		return nil, "", fmt.Errorf("shim exited before it was ready (%v)", err)
	}
}
