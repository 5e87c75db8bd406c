package hook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// waitDelay bounds how long Run waits for the output pipes of a killed hook
// whose descendants escaped its process group.
const waitDelay = 2 * time.Second

// maxStderr bounds the stderr kept for the error message.
const maxStderr = 64 << 10

// Run executes hook h, the index'th of its kind ("prestart", "poststop",
// ...), as runtime-spec config.md "POSIX-platform Hooks" says: h.Path with
// argv h.Args (h.Args[0] is argv0; [h.Path] when empty), environment exactly
// h.Env, the JSON of state on stdin. The hook and its process group are
// killed after h.Timeout seconds when that is set, and when ctx is done. A
// non-zero exit, a signal or a timeout is an error that names the hook and
// quotes the first line of its stderr.
func Run(ctx context.Context, kind string, index int, h specs.Hook, state *specs.State) error {
	name := fmt.Sprintf("%s hook %d (%s)", kind, index, h.Path)
	if !filepath.IsAbs(h.Path) {
		return fmt.Errorf("%s: path is not absolute: %w", name, errdefs.ErrInvalidArgument)
	}
	in, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("%s: encode state: %w", name, err)
	}
	var timeout time.Duration
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("%s: timeout %d must be positive: %w", name, *h.Timeout, errdefs.ErrInvalidArgument)
		}
		timeout = time.Duration(*h.Timeout) * time.Second
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = h.Args
	if len(cmd.Args) == 0 {
		cmd.Args = []string{h.Path}
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{} // nil would mean "inherit ours"
	}
	cmd.Stdin = bytes.NewReader(in)
	// stdout goes to /dev/null; stderr is kept for the error message.
	stderr := &limitedBuffer{max: maxStderr}
	cmd.Stderr = stderr
	// A process group of its own so that a timeout also kills what the
	// hook started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = waitDelay

	err = cmd.Run()
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) && cmd.ProcessState != nil:
		msg = fmt.Sprintf("killed after timeout of %s", timeout)
		err = context.DeadlineExceeded
	case ctx.Err() != nil && cmd.ProcessState != nil:
		msg = "killed: " + ctx.Err().Error()
		err = ctx.Err()
	}
	if line := firstLine(stderr.buf.Bytes()); line != "" {
		msg += ": " + line
	}
	return &runError{msg: name + ": " + msg, err: err}
}

// runError is a failed hook: msg is the whole message and err, which msg
// already describes, stays reachable with errors.Is and errors.As (for
// *exec.ExitError or context.DeadlineExceeded).
type runError struct {
	msg string
	err error
}

func (e *runError) Error() string { return e.msg }
func (e *runError) Unwrap() error { return e.err }

func firstLine(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			return line
		}
	}
	return ""
}

// limitedBuffer keeps the first max bytes written and discards the rest, so
// that a chatty hook neither blocks nor fills memory.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// RunAll runs hooks in order and stops at the first error.
func RunAll(ctx context.Context, kind string, hooks []specs.Hook, state *specs.State) error {
	for i, h := range hooks {
		if err := Run(ctx, kind, i, h, state); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks every hook of s: an absolute path to an existing,
// executable regular file on the host, except startContainer paths, which
// resolve in the container (config.md) and are only checked to be absolute,
// and a
// positive timeout when one is set. Errors name the field, e.g.
// `hooks.prestart[0].path: "/x" is not executable`. A nil s is valid.
func Validate(s *specs.Hooks) error {
	if s == nil {
		return nil
	}
	kinds := []struct {
		name  string
		hooks []specs.Hook
	}{
		{"prestart", s.Prestart},
		{"createRuntime", s.CreateRuntime},
		{"createContainer", s.CreateContainer},
		{"startContainer", s.StartContainer},
		{"poststart", s.Poststart},
		{"poststop", s.Poststop},
	}
	for _, k := range kinds {
		for i, h := range k.hooks {
			if err := validate(h, k.name != "startContainer"); err != nil {
				return fmt.Errorf("hooks.%s[%d].%w", k.name, i, err)
			}
		}
	}
	return nil
}

// validate returns an error whose text starts with the field name.
func validate(h specs.Hook, onHost bool) error {
	if h.Path == "" {
		return fmt.Errorf("path: is required: %w", errdefs.ErrInvalidArgument)
	}
	if !filepath.IsAbs(h.Path) {
		return fmt.Errorf("path: %q is not absolute: %w", h.Path, errdefs.ErrInvalidArgument)
	}
	if h.Timeout != nil && *h.Timeout <= 0 {
		return fmt.Errorf("timeout: %d must be positive: %w", *h.Timeout, errdefs.ErrInvalidArgument)
	}
	if !onHost {
		return nil
	}
	fi, err := os.Stat(h.Path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("path: %q does not exist: %w", h.Path, errdefs.ErrInvalidArgument)
		}
		return fmt.Errorf("path: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("path: %q is not a regular file: %w", h.Path, errdefs.ErrInvalidArgument)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("path: %q is not executable: %w", h.Path, errdefs.ErrInvalidArgument)
	}
	if h.Timeout != nil && *h.Timeout <= 0 {
		return fmt.Errorf("timeout: %d must be positive: %w", *h.Timeout, errdefs.ErrInvalidArgument)
	}
	return nil
}
