package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	shimapi "github.com/gantry-project/gantry/api/shim/v1"
	"github.com/gantry-project/gantry/internal/errdefs"
)

// maxRequest bounds one request line (an exec's process object included).
const maxRequest = 1 << 20

func (s *Shim) acceptLoop() {
	for {
		conn, err := s.listener.AcceptUnix()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go s.handle(conn)
	}
}

// handle answers one request on conn.
func (s *Shim) handle(conn *net.UnixConn) {
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	br := bufio.NewReaderSize(io.LimitReader(conn, maxRequest), 4096)
	line, err := br.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return
	}
	var req shimapi.Request
	if err := json.Unmarshal(line, &req); err != nil {
		writeResponse(conn, nil, fmt.Errorf("decode request: %v: %w", err, errdefs.ErrInvalidArgument))
		return
	}
	if req.Version != shimapi.Version {
		writeResponse(conn, nil, fmt.Errorf("protocol version %q: this shim speaks %s: %w", req.Version, shimapi.Version, errdefs.ErrNotImplemented))
		return
	}
	// A Wait ends when its client goes away: watch for EOF on the conn.
	if req.Method == shimapi.MethodWait {
		go func() {
			var b [1]byte
			conn.Read(b[:])
			cancel()
		}()
	}
	result, err := s.dispatch(ctx, req)
	if err := writeResponse(conn, result, err); err != nil {
		if o, ok := result.(attachOutput); ok {
			o.h.detach(o.s)
		}
		return
	}
	switch req.Method {
	case shimapi.MethodAttach:
		if err == nil {
			if w, ok := result.(attachTarget); ok {
				io.Copy(w.f, io.MultiReader(br, conn))
			}
		}
	case shimapi.MethodAttachOutput:
		if o, ok := result.(attachOutput); ok && err == nil {
			o.h.serve(conn, o.s, o.pending)
		}
	case shimapi.MethodDelete:
		if r, derr := decode[shimapi.DeleteRequest](req); err == nil && derr == nil && r.ExecID == "" {
			s.stop()
		}
	case shimapi.MethodShutdown:
		if err == nil {
			s.stop()
		}
	}
}

// attachTarget is Attach's result: encoded as {}, then stdin is fed.
type attachTarget struct{ f *os.File }

func (attachTarget) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }

func decode[T any](req shimapi.Request) (T, error) {
	var v T
	if len(req.Params) == 0 || string(req.Params) == "null" {
		return v, nil
	}
	if err := json.Unmarshal(req.Params, &v); err != nil {
		return v, fmt.Errorf("%s: params: %v: %w", req.Method, err, errdefs.ErrInvalidArgument)
	}
	return v, nil
}

func (s *Shim) dispatch(ctx context.Context, req shimapi.Request) (any, error) {
	switch req.Method {
	case shimapi.MethodConnect:
		return s.connect(), nil
	case shimapi.MethodStart:
		r, err := decode[shimapi.StartRequest](req)
		if err != nil {
			return nil, err
		}
		return s.start(ctx, r)
	case shimapi.MethodState:
		r, err := decode[shimapi.StateRequest](req)
		if err != nil {
			return nil, err
		}
		return s.state(r.ExecID)
	case shimapi.MethodKill:
		r, err := decode[shimapi.KillRequest](req)
		if err != nil {
			return nil, err
		}
		return shimapi.Empty{}, s.kill(ctx, r)
	case shimapi.MethodExec:
		r, err := decode[shimapi.ExecRequest](req)
		if err != nil {
			return nil, err
		}
		return s.exec(ctx, r)
	case shimapi.MethodResizePty:
		r, err := decode[shimapi.ResizePtyRequest](req)
		if err != nil {
			return nil, err
		}
		return shimapi.Empty{}, s.resizePty(r)
	case shimapi.MethodCloseStdin:
		r, err := decode[shimapi.CloseStdinRequest](req)
		if err != nil {
			return nil, err
		}
		return shimapi.Empty{}, s.closeStdin(r.ExecID)
	case shimapi.MethodAttach:
		r, err := decode[shimapi.AttachRequest](req)
		if err != nil {
			return nil, err
		}
		f, err := s.stdinOf(r.ExecID)
		if err != nil {
			return nil, err
		}
		return attachTarget{f}, nil
	case shimapi.MethodAttachOutput:
		r, err := decode[shimapi.AttachOutputRequest](req)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		p, err := s.lookup(r.ExecID)
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if p.out == nil {
			return nil, fmt.Errorf("attach output: process has no output: %w", errdefs.ErrFailedPrecondition)
		}
		sub, pending := p.out.attach()
		return attachOutput{p.out, sub, pending}, nil
	case shimapi.MethodPause:
		return shimapi.Empty{}, s.setStatus(ctx, true)
	case shimapi.MethodResume:
		return shimapi.Empty{}, s.setStatus(ctx, false)
	case shimapi.MethodPids:
		pids, err := s.rt.Ps(ctx, s.opts.ID)
		return shimapi.PidsResponse{Pids: pids}, err
	case shimapi.MethodStats:
		data, err := s.rt.Stats(ctx, s.opts.ID)
		return shimapi.StatsResponse{Data: data}, err
	case shimapi.MethodUpdate:
		r, err := decode[shimapi.UpdateRequest](req)
		if err != nil {
			return nil, err
		}
		return shimapi.Empty{}, s.rt.Update(ctx, s.opts.ID, r.Resources)
	case shimapi.MethodWait:
		r, err := decode[shimapi.WaitRequest](req)
		if err != nil {
			return nil, err
		}
		return s.wait(ctx, r.ExecID)
	case shimapi.MethodDelete:
		r, err := decode[shimapi.DeleteRequest](req)
		if err != nil {
			return nil, err
		}
		st, _, err := s.delete(ctx, r)
		return st, err
	case shimapi.MethodShutdown:
		r, err := decode[shimapi.ShutdownRequest](req)
		if err != nil {
			return nil, err
		}
		return shimapi.Empty{}, s.shutdown(r)
	}
	return nil, fmt.Errorf("method %q: %w", req.Method, errdefs.ErrNotImplemented)
}

func writeResponse(w io.Writer, result any, err error) error {
	var resp shimapi.Response
	if err != nil {
		resp.Error = &shimapi.Error{Kind: kindOf(err), Message: err.Error()}
	} else {
		data, merr := json.Marshal(result)
		if merr != nil {
			resp.Error = &shimapi.Error{Kind: shimapi.KindUnknown, Message: merr.Error()}
		} else {
			resp.Result = data
		}
	}
	data, _ := json.Marshal(resp)
	_, werr := w.Write(append(data, '\n'))
	return werr
}

var kinds = []struct {
	err  error
	kind string
}{
	{errdefs.ErrNotFound, shimapi.KindNotFound},
	{errdefs.ErrAlreadyExists, shimapi.KindAlreadyExists},
	{errdefs.ErrInvalidArgument, shimapi.KindInvalidArgument},
	{errdefs.ErrFailedPrecondition, shimapi.KindFailedPrecondition},
	{errdefs.ErrUnavailable, shimapi.KindUnavailable},
	{errdefs.ErrNotImplemented, shimapi.KindNotImplemented},
}

func kindOf(err error) string {
	for _, k := range kinds {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return shimapi.KindUnknown
}

func errOfKind(kind string) error {
	for _, k := range kinds {
		if k.kind == kind {
			return k.err
		}
	}
	return nil
}
