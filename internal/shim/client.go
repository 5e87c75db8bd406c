package shim

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	shimapi "github.com/gantry-project/gantry/api/shim/v1"
	"github.com/gantry-project/gantry/internal/errdefs"
)

// Client talks to one shim. Each call is one connection, so a Client is
// safe for concurrent use and survives a shim restart of nothing: there is
// no connection state to lose.
type Client struct {
	socket string
}

// NewClient returns a client for the shim whose socket is path (usually
// Dir(...)/SocketName).
func NewClient(path string) *Client { return &Client{socket: path} }

// dial connects to the socket, going through /proc/self/fd for a path
// longer than sun_path allows.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	if len(c.socket) < 100 {
		return d.DialContext(ctx, "unix", c.socket)
	}
	dir, err := os.OpenFile(filepath.Dir(c.socket), os.O_RDONLY|unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return d.DialContext(ctx, "unix", "/proc/self/fd/"+strconv.Itoa(int(dir.Fd()))+"/"+filepath.Base(c.socket))
}

// call sends one request and decodes the result into out (if not nil). It
// returns the connection when keep is set (Attach).
func (c *Client) call(ctx context.Context, method string, params, out any, keep bool) (net.Conn, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("shim %s: connect %s: %v: %w", method, c.socket, err, errdefs.ErrUnavailable)
	}
	ok := false
	defer func() {
		if !ok {
			conn.Close()
		}
	}()
	if dl, has := ctx.Deadline(); has {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	p, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("shim %s: encode: %w", method, err)
	}
	req, _ := json.Marshal(shimapi.Request{Version: shimapi.Version, Method: method, Params: p})
	if _, err := conn.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("shim %s: send: %v: %w", method, err, errdefs.ErrUnavailable)
	}
	var line []byte
	if keep {
		// Read no further than the answer: a stream follows it.
		line, err = readLine(conn, maxRequest)
	} else {
		line, err = bufio.NewReader(io.LimitReader(conn, maxRequest)).ReadBytes('\n')
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("shim %s: %w", method, ctx.Err())
		}
		return nil, fmt.Errorf("shim %s: read answer: %v: %w", method, err, errdefs.ErrUnavailable)
	}
	var resp shimapi.Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("shim %s: decode answer: %w", method, err)
	}
	if resp.Error != nil {
		if k := errOfKind(resp.Error.Kind); k != nil {
			return nil, fmt.Errorf("shim %s: %s: %w", method, resp.Error.Message, k)
		}
		return nil, fmt.Errorf("shim %s: %s", method, resp.Error.Message)
	}
	if out != nil {
		if err := json.Unmarshal(resp.Result, out); err != nil {
			return nil, fmt.Errorf("shim %s: decode result: %w", method, err)
		}
	}
	conn.SetDeadline(time.Time{})
	ok = keep
	return conn, nil
}

// Connect identifies the shim.
func (c *Client) Connect(ctx context.Context) (shimapi.ConnectResponse, error) {
	var r shimapi.ConnectResponse
	_, err := c.call(ctx, shimapi.MethodConnect, shimapi.ConnectRequest{}, &r, false)
	return r, err
}

// Start starts the container's process.
func (c *Client) Start(ctx context.Context) (shimapi.StateResponse, error) {
	return c.StartWith(ctx, shimapi.StartRequest{})
}

// StartWith starts the container's process with the options of r.
func (c *Client) StartWith(ctx context.Context, r shimapi.StartRequest) (shimapi.StateResponse, error) {
	var st shimapi.StateResponse
	_, err := c.call(ctx, shimapi.MethodStart, r, &st, false)
	return st, err
}

// State returns the state of the container (execID "") or of an exec.
func (c *Client) State(ctx context.Context, execID string) (shimapi.StateResponse, error) {
	var r shimapi.StateResponse
	_, err := c.call(ctx, shimapi.MethodState, shimapi.StateRequest{ExecID: execID}, &r, false)
	return r, err
}

// Kill signals the container's init (all: every process) or an exec.
func (c *Client) Kill(ctx context.Context, execID string, sig syscall.Signal, all bool) error {
	_, err := c.call(ctx, shimapi.MethodKill, shimapi.KillRequest{ExecID: execID, Signal: int(sig), All: all}, nil, false)
	return err
}

// Exec starts a process (a runtime-spec process object) in the container.
func (c *Client) Exec(ctx context.Context, r shimapi.ExecRequest) (shimapi.StateResponse, error) {
	var st shimapi.StateResponse
	_, err := c.call(ctx, shimapi.MethodExec, r, &st, false)
	return st, err
}

// ResizePty sets the pty size of the container or of an exec.
func (c *Client) ResizePty(ctx context.Context, execID string, width, height uint16) error {
	_, err := c.call(ctx, shimapi.MethodResizePty, shimapi.ResizePtyRequest{ExecID: execID, Width: width, Height: height}, nil, false)
	return err
}

// CloseStdin closes the stdin of the container or of an exec.
func (c *Client) CloseStdin(ctx context.Context, execID string) error {
	_, err := c.call(ctx, shimapi.MethodCloseStdin, shimapi.CloseStdinRequest{ExecID: execID}, nil, false)
	return err
}

// Attach returns a writer to the stdin of the container or of an exec;
// closing it ends the stream without closing stdin. Close returns once the
// shim has written everything to stdin, so a CloseStdin after it never cuts
// the stream short.
func (c *Client) Attach(ctx context.Context, execID string) (io.WriteCloser, error) {
	conn, err := c.call(ctx, shimapi.MethodAttach, shimapi.AttachRequest{ExecID: execID}, nil, true)
	if err != nil {
		return nil, err
	}
	return attachConn{conn}, nil
}

type attachConn struct{ net.Conn }

// Close half-closes the stream and waits for the shim to close its side,
// which it does once the copy to stdin is done.
func (a attachConn) Close() error {
	if uc, ok := a.Conn.(*net.UnixConn); ok {
		if err := uc.CloseWrite(); err == nil {
			a.Conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			io.Copy(io.Discard, a.Conn)
		}
	}
	return a.Conn.Close()
}

// Pause freezes the container.
func (c *Client) Pause(ctx context.Context) error {
	_, err := c.call(ctx, shimapi.MethodPause, shimapi.Empty{}, nil, false)
	return err
}

// Resume thaws the container.
func (c *Client) Resume(ctx context.Context) error {
	_, err := c.call(ctx, shimapi.MethodResume, shimapi.Empty{}, nil, false)
	return err
}

// Pids lists the container's processes.
func (c *Client) Pids(ctx context.Context) ([]int, error) {
	var r shimapi.PidsResponse
	_, err := c.call(ctx, shimapi.MethodPids, shimapi.Empty{}, &r, false)
	return r.Pids, err
}

// Stats returns the runtime's stats data.
func (c *Client) Stats(ctx context.Context) (json.RawMessage, error) {
	var r shimapi.StatsResponse
	_, err := c.call(ctx, shimapi.MethodStats, shimapi.Empty{}, &r, false)
	return r.Data, err
}

// Update applies a linux.resources object.
func (c *Client) Update(ctx context.Context, resources json.RawMessage) error {
	_, err := c.call(ctx, shimapi.MethodUpdate, shimapi.UpdateRequest{Resources: resources}, nil, false)
	return err
}

// Wait blocks until the container's init (or an exec) has exited and its
// exit is recorded.
func (c *Client) Wait(ctx context.Context, execID string) (shimapi.StateResponse, error) {
	var r shimapi.StateResponse
	_, err := c.call(ctx, shimapi.MethodWait, shimapi.WaitRequest{ExecID: execID}, &r, false)
	return r, err
}

// Delete deletes an exited exec, or the container (the shim then exits).
func (c *Client) Delete(ctx context.Context, execID string, force bool) (shimapi.StateResponse, error) {
	var r shimapi.StateResponse
	_, err := c.call(ctx, shimapi.MethodDelete, shimapi.DeleteRequest{ExecID: execID, Force: force}, &r, false)
	return r, err
}

// Shutdown stops the shim (refused while its container exists, unless now).
func (c *Client) Shutdown(ctx context.Context, now bool) error {
	_, err := c.call(ctx, shimapi.MethodShutdown, shimapi.ShutdownRequest{Now: now}, nil, false)
	return err
}

// AttachOutput returns the live output of the container or of an exec,
// from now on (for an exec: also what it wrote before its first attacher).
// The stream ends (io.EOF) once the process's output has ended; Close
// leaves early.
func (c *Client) AttachOutput(ctx context.Context, execID string) (*OutputStream, error) {
	conn, err := c.call(ctx, shimapi.MethodAttachOutput, shimapi.AttachOutputRequest{ExecID: execID}, nil, true)
	if err != nil {
		return nil, err
	}
	return &OutputStream{conn: conn, r: bufio.NewReader(conn)}, nil
}

// OutputStream reads AttachOutput frames.
type OutputStream struct {
	conn net.Conn
	r    *bufio.Reader
}

// maxFrame bounds one frame's data (the shim reads 32 KiB at most).
const maxFrame = 1 << 20

// Next returns the next chunk and its stream (shimapi.OutputStdout or
// OutputStderr); io.EOF once the output has ended.
func (o *OutputStream) Next() (int, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(o.r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("shim output: truncated frame: %w", err)
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("shim output: frame of %d bytes: %w", n, errdefs.ErrInvalidArgument)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(o.r, data); err != nil {
		return 0, nil, fmt.Errorf("shim output: truncated frame: %w", err)
	}
	return int(hdr[0]), data, nil
}

// Close leaves the stream.
func (o *OutputStream) Close() error { return o.conn.Close() }

// readLine reads up to and including the first '\n', one byte at a time.
func readLine(r io.Reader, max int) ([]byte, error) {
	var line []byte
	var b [1]byte
	for len(line) < max {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return line, err
		}
		line = append(line, b[0])
		if b[0] == '\n' {
			return line, nil
		}
	}
	return line, fmt.Errorf("answer longer than %d bytes", max)
}
