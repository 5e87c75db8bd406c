package ociclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// DefaultTimeout bounds one runtime call when Runtime.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// ErrTimeout is wrapped by the error of a runtime call that did not finish
// within its timeout; its kind is errdefs.ErrUnavailable.
var ErrTimeout = fmt.Errorf("runtime call timed out: %w", errdefs.ErrUnavailable)

// Runtime is one runc-compatible binary with its global flags. The zero
// values of the optional fields are usable defaults. A Runtime is safe for
// concurrent use.
type Runtime struct {
	// Binary is the runtime's path (or a name looked up in $PATH).
	Binary string
	// Root is passed as --root when set.
	Root string
	// Log is the JSON log file passed as --log. Calls append to it; the
	// lines a call added are searched for its error message. When empty,
	// each call uses a temporary file that it removes.
	Log string
	// Timeout bounds each call (DefaultTimeout when zero). A call that runs
	// longer is killed, with its whole process group, and returns an error
	// wrapping ErrTimeout.
	Timeout time.Duration
	// Debug passes --debug.
	Debug bool
	// Monitor starts and waits for the runtime process (see Monitor).
	Monitor Monitor
}

// Error is a runtime call that ran and failed.
type Error struct {
	// Verb is the runtime command ("create", "kill", ...).
	Verb string
	// ExitCode is the runtime's exit code.
	ExitCode int
	// Message is the last "error" message of the runtime's JSON log, or
	// else the last line of its stderr.
	Message string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "no error message"
	}
	return fmt.Sprintf("runtime %s: %s (exit status %d)", e.Verb, msg, e.ExitCode)
}

// Unwrap guesses the error kind from the message: a container the runtime
// does not know is errdefs.ErrNotFound (runc and gantry-oci both say
// "container ... does not exist" or "... not found").
func (e *Error) Unwrap() error {
	m := strings.ToLower(e.Message)
	if strings.Contains(m, "container") && (strings.Contains(m, "does not exist") || strings.Contains(m, "not found")) {
		return errdefs.ErrNotFound
	}
	return nil
}

// IO is the stdio given to a container's or exec's process. A nil field is
// /dev/null.
type IO struct {
	Stdin, Stdout, Stderr *os.File
}

// call is one runtime invocation.
type call struct {
	verb  string
	args  []string // after the verb
	io    *IO      // stdio for the runtime (and so the container); nil: capture
	stdin []byte   // written to the runtime's stdin when io is nil
	// noTimeout is set for a foreground exec, which lasts as long as its
	// process.
	noTimeout bool
	// extra are passed as fds 3, 4, ...
	extra []*os.File
}

func (r *Runtime) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultTimeout
}

// run executes one call and returns its stdout (captured only when c.io is
// nil) and its exit code.
func (r *Runtime) run(ctx context.Context, c call) ([]byte, int, error) {
	logPath := r.Log
	var logOffset int64
	if logPath == "" {
		f, err := os.CreateTemp("", "ociclient-log-")
		if err != nil {
			return nil, -1, fmt.Errorf("runtime %s: create log file: %w", c.verb, err)
		}
		logPath = f.Name()
		f.Close()
		defer os.Remove(logPath)
	} else if st, err := os.Stat(logPath); err == nil {
		logOffset = st.Size()
	}

	args := []string{"--log", logPath, "--log-format", "json"}
	if r.Root != "" {
		args = append(args, "--root", r.Root)
	}
	if r.Debug {
		args = append(args, "--debug")
	}
	args = append(args, c.verb)
	args = append(args, c.args...)
	cmd := exec.Command(r.Binary, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.ExtraFiles = c.extra

	var stdout, stderr *capture
	var toClose []*os.File
	if c.io != nil {
		// A nil *os.File must stay a nil interface (exec then opens
		// /dev/null).
		if c.io.Stdin != nil {
			cmd.Stdin = c.io.Stdin
		}
		if c.io.Stdout != nil {
			cmd.Stdout = c.io.Stdout
		}
		if c.io.Stderr != nil {
			cmd.Stderr = c.io.Stderr
		}
	} else {
		var err error
		if stdout, err = newCapture(); err != nil {
			return nil, -1, fmt.Errorf("runtime %s: stdout pipe: %w", c.verb, err)
		}
		defer stdout.close()
		if stderr, err = newCapture(); err != nil {
			return nil, -1, fmt.Errorf("runtime %s: stderr pipe: %w", c.verb, err)
		}
		defer stderr.close()
		cmd.Stdout, cmd.Stderr = stdout.w, stderr.w
		if c.stdin != nil {
			pr, pw, err := os.Pipe()
			if err != nil {
				return nil, -1, fmt.Errorf("runtime %s: stdin pipe: %w", c.verb, err)
			}
			defer pr.Close()
			// Small inputs (a resources object) fit the pipe buffer; a
			// larger one is fed by a goroutine that ends when the runtime
			// exits (EPIPE) or reads everything.
			go func() {
				pw.Write(c.stdin)
				pw.Close()
			}()
			cmd.Stdin = pr
			toClose = append(toClose, pr)
		}
	}

	mon := r.Monitor
	if mon == nil {
		mon = defaultMonitor{}
	}
	ch, err := mon.Start(cmd)
	for _, f := range toClose {
		f.Close()
	}
	if stdout != nil {
		stdout.started()
		stderr.started()
	}
	if err != nil {
		return nil, -1, fmt.Errorf("runtime %s: start %s: %w", c.verb, r.Binary, err)
	}
	pid := cmd.Process.Pid

	var timedOut atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	var timer <-chan time.Time
	if !c.noTimeout {
		t := time.NewTimer(r.timeout())
		defer t.Stop()
		timer = t.C
	}
	go func() {
		select {
		case <-stop:
			return
		case <-timer:
			timedOut.Store(true)
		case <-ctx.Done():
		}
		// The runtime and whatever it started in its process group.
		syscall.Kill(-pid, syscall.SIGKILL)
		syscall.Kill(pid, syscall.SIGKILL)
	}()

	code, werr := mon.Wait(cmd, ch)
	var out, errOut []byte
	if stdout != nil {
		out, errOut = stdout.bytes(), stderr.bytes()
	}
	if timedOut.Load() {
		return out, -1, fmt.Errorf("runtime %s %s: no answer after %s, killed it (process group %d): %w",
			c.verb, strings.Join(c.args, " "), r.timeout(), pid, ErrTimeout)
	}
	if ctx.Err() != nil {
		return out, -1, fmt.Errorf("runtime %s: %w", c.verb, ctx.Err())
	}
	if werr != nil {
		return out, -1, fmt.Errorf("runtime %s: wait: %w", c.verb, werr)
	}
	if code != 0 {
		msg := lastLogError(logPath, logOffset)
		if msg == "" {
			msg = lastLine(errOut)
		}
		return out, code, &Error{Verb: c.verb, ExitCode: code, Message: msg}
	}
	return out, 0, nil
}

// capture collects a child's output through a pipe without exec.Cmd's
// goroutines (which only exec.Cmd.Wait would collect).
type capture struct {
	r, w *os.File
	buf  bytes.Buffer
	done chan struct{}
}

const captureLimit = 4 << 20

func newCapture() (*capture, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	return &capture{r: r, w: w, done: make(chan struct{})}, nil
}

// started closes the parent's copy of the write end and starts reading.
func (c *capture) started() {
	c.w.Close()
	c.w = nil
	go func() {
		defer close(c.done)
		io.Copy(&c.buf, io.LimitReader(c.r, captureLimit))
		io.Copy(io.Discard, c.r)
	}()
}

// bytes waits for EOF, or a little while when a process the runtime
// started still holds the pipe.
func (c *capture) bytes() []byte {
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
		c.r.Close()
		<-c.done
	}
	return c.buf.Bytes()
}

func (c *capture) close() {
	if c.w != nil {
		c.w.Close()
	}
	c.r.Close()
}

// lastLogError returns the msg of the last "error" (or "fatal") line of a
// JSON log from offset on.
func lastLogError(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	return parseLogError(f)
}

func parseLogError(r io.Reader) string {
	var msg string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Error string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		switch strings.ToLower(e.Level) {
		case "error", "fatal", "panic":
			msg = e.Msg
			if e.Error != "" && !strings.Contains(msg, e.Error) {
				msg += ": " + e.Error
			}
		}
	}
	return msg
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 512 {
		l = l[:512]
	}
	return l
}
