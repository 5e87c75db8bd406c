package client

import (
	"context"
	"errors"
	"io"
	"syscall"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
)

// CreateContainer records a container of an image: its snapshot is
// prepared and its bundle written; nothing runs yet (see CreateTask).
func (c *Client) CreateContainer(ctx context.Context, req *gantryv1.CreateContainerRequest) (*gantryv1.Container, error) {
	resp, err := c.ctrs.Create(ctx, req)
	if err != nil {
		return nil, err
	}
	return resp.GetContainer(), nil
}

// RunContainer creates a container and its task, started, in one call
// (CreateContainer with the request's task set, as RunTask describes;
// holdOutput as there). If the task fails the container is removed again
// and the error returned. The task's state is nil when gantryd is older
// than this call and created only the container: create and start its
// task then (RunTask).
func (c *Client) RunContainer(ctx context.Context, req *gantryv1.CreateContainerRequest, holdOutput bool) (*gantryv1.Container, *gantryv1.TaskState, error) {
	req.Task = &gantryv1.CreateTaskRequest{Start: true, HoldOutput: holdOutput}
	resp, err := c.ctrs.Create(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	return resp.GetContainer(), resp.GetTask(), nil
}

// Container returns a container by id, name or unique id prefix.
func (c *Client) Container(ctx context.Context, ref string) (*gantryv1.Container, error) {
	resp, err := c.ctrs.Get(ctx, &gantryv1.GetContainerRequest{Ref: ref})
	if err != nil {
		return nil, err
	}
	return resp.GetContainer(), nil
}

// ListContainers lists the containers of the namespace, newest first.
func (c *Client) ListContainers(ctx context.Context) ([]*gantryv1.Container, error) {
	resp, err := c.ctrs.List(ctx, &gantryv1.ListContainersRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetContainers(), nil
}

// LabelAutoRemove on a container says that it is removed once it exits:
// by its client (value AutoRemoveClient, "true", as a foreground `gantry
// run --rm` does), or by gantryd itself when its task exits (value
// AutoRemoveDetached, "detached", for `gantry run -d --rm`). Either way
// gantryd has its shim delete it with the runtime as soon as it exits. It
// is the API's gantryv1.LabelAutoRemove, which gantryd reads.
const LabelAutoRemove = gantryv1.LabelAutoRemove

// The values of LabelAutoRemove (gantryv1.AutoRemoveClient and
// gantryv1.AutoRemoveDetached).
const (
	AutoRemoveClient   = gantryv1.AutoRemoveClient
	AutoRemoveDetached = gantryv1.AutoRemoveDetached
)

// DeleteContainer removes a container, its task (force: even running),
// bundle, log and snapshot (unless keepSnapshot).
func (c *Client) DeleteContainer(ctx context.Context, ref string, force, keepSnapshot bool) (*gantryv1.Container, error) {
	resp, err := c.ctrs.Delete(ctx, &gantryv1.DeleteContainerRequest{Ref: ref, Force: force, KeepSnapshot: keepSnapshot})
	if err != nil {
		return nil, err
	}
	return resp.GetContainer(), nil
}

// CreateTask launches the container's shim, which creates the container.
func (c *Client) CreateTask(ctx context.Context, ref string) (*gantryv1.TaskState, error) {
	return c.tasks.Create(ctx, &gantryv1.CreateTaskRequest{Ref: ref})
}

// RunTask creates and starts the container's task in one call: its shim
// runs the runtime once (`run --detach`) instead of create, then start.
// With holdOutput, what the process writes before the first live attacher
// (Logs with Live) is held for it, so a client that attaches next misses
// nothing; a client that will not attach leaves it false. The answer is
// the started task's state, possibly already "stopped". A gantryd older
// than this call only creates the task (status "created"): start it then.
func (c *Client) RunTask(ctx context.Context, ref string, holdOutput bool) (*gantryv1.TaskState, error) {
	return c.tasks.Create(ctx, &gantryv1.CreateTaskRequest{Ref: ref, Start: true, HoldOutput: holdOutput})
}

// StartTask starts the container's process.
func (c *Client) StartTask(ctx context.Context, ref string) (*gantryv1.TaskState, error) {
	return c.tasks.Start(ctx, &gantryv1.TaskRequest{Ref: ref})
}

// TaskState returns the state of the container's task or of one exec.
func (c *Client) TaskState(ctx context.Context, ref, execID string) (*gantryv1.TaskState, error) {
	return c.tasks.State(ctx, &gantryv1.TaskRequest{Ref: ref, ExecId: execID})
}

// Kill signals the container's init (all: every process) or one exec.
func (c *Client) Kill(ctx context.Context, ref, execID string, sig syscall.Signal, all bool) error {
	_, err := c.tasks.Kill(ctx, &gantryv1.KillTaskRequest{Ref: ref, ExecId: execID, Signal: int32(sig), All: all})
	return err
}

// Wait returns once the task (or exec) has exited.
func (c *Client) Wait(ctx context.Context, ref, execID string) (*gantryv1.TaskState, error) {
	return c.tasks.Wait(ctx, &gantryv1.TaskRequest{Ref: ref, ExecId: execID})
}

// DeleteTask removes an exited exec or the task.
func (c *Client) DeleteTask(ctx context.Context, ref, execID string, force bool) (*gantryv1.TaskState, error) {
	return c.tasks.Delete(ctx, &gantryv1.DeleteTaskRequest{Ref: ref, ExecId: execID, Force: force})
}

// Exec starts a process in the running container.
func (c *Client) Exec(ctx context.Context, req *gantryv1.ExecTaskRequest) (*gantryv1.TaskState, error) {
	return c.tasks.Exec(ctx, req)
}

// Pause freezes the container.
func (c *Client) Pause(ctx context.Context, ref string) error {
	_, err := c.tasks.Pause(ctx, &gantryv1.TaskRequest{Ref: ref})
	return err
}

// Resume thaws the container.
func (c *Client) Resume(ctx context.Context, ref string) error {
	_, err := c.tasks.Resume(ctx, &gantryv1.TaskRequest{Ref: ref})
	return err
}

// Pids lists the container's processes (host pids).
func (c *Client) Pids(ctx context.Context, ref string) ([]int32, error) {
	resp, err := c.tasks.Pids(ctx, &gantryv1.TaskRequest{Ref: ref})
	if err != nil {
		return nil, err
	}
	return resp.GetPids(), nil
}

// Stats returns the runtime's statistics of the container as JSON.
func (c *Client) Stats(ctx context.Context, ref string) ([]byte, error) {
	resp, err := c.tasks.Stats(ctx, &gantryv1.TaskRequest{Ref: ref})
	if err != nil {
		return nil, err
	}
	return resp.GetData(), nil
}

// ResizePty sets the pty size of the container or of one exec.
func (c *Client) ResizePty(ctx context.Context, ref, execID string, width, height uint32) error {
	_, err := c.tasks.ResizePty(ctx, &gantryv1.ResizePtyTaskRequest{Ref: ref, ExecId: execID, Width: width, Height: height})
	return err
}

// CloseStdin closes the stdin of the container or of one exec.
func (c *Client) CloseStdin(ctx context.Context, ref, execID string) error {
	_, err := c.tasks.CloseStdin(ctx, &gantryv1.TaskRequest{Ref: ref, ExecId: execID})
	return err
}

// Attach copies r to the stdin of the container or of one exec until r
// ends (it does not close stdin: call CloseStdin).
func (c *Client) Attach(ctx context.Context, ref, execID string, r io.Reader) error {
	stream, err := c.tasks.Attach(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&gantryv1.AttachTaskRequest{Ref: ref, ExecId: execID}); err != nil {
		return err
	}
	buf := make([]byte, 32<<10)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if err := stream.Send(&gantryv1.AttachTaskRequest{Data: append([]byte(nil), buf[:n]...)}); err != nil {
				if errors.Is(err, io.EOF) {
					_, err = stream.CloseAndRecv()
				}
				return err
			}
		}
		if rerr != nil {
			_, err := stream.CloseAndRecv()
			return err
		}
	}
}

// LogsOptions configure Logs.
type LogsOptions struct {
	Follow bool
	// Tail is the number of last entries (< 0: all).
	Tail        int64
	UntilExecID string
	// Ready is called once the daemon is positioned in the log (or, with
	// Live, attached to the output).
	Ready func()
	// Live streams the raw output of the running container, or of the exec
	// ExecID, as it is written, instead of the log (Tail, Follow and
	// UntilExecID are ignored); it ends when the output ends.
	Live   bool
	ExecID string
}

// Logs calls fn for each log entry of the container.
func (c *Client) Logs(ctx context.Context, ref string, o LogsOptions, fn func(*gantryv1.LogEntry) error) error {
	stream, err := c.tasks.Logs(ctx, &gantryv1.LogsRequest{Ref: ref, Follow: o.Follow, Tail: o.Tail, UntilExecId: o.UntilExecID,
		Live: o.Live, ExecId: o.ExecID})
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if msg.GetReady() && o.Ready != nil {
			o.Ready()
		}
		for _, e := range msg.GetEntries() {
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}

// Subscribe calls fn for every event matching filters ("key=value", key
// topic, id or namespace), after replaying the held events above since,
// until ctx ends or fn fails.
func (c *Client) Subscribe(ctx context.Context, filters []string, since uint64, allNamespaces bool, fn func(*gantryv1.Event) error) error {
	stream, err := c.events.Subscribe(ctx, &gantryv1.SubscribeRequest{Filters: filters, Since: since, AllNamespaces: allNamespaces})
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}
