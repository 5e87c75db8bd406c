package services

import (
	"context"
	"errors"
	"fmt"
	"io"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/internal/errdefs"
)

type taskServer struct {
	gantryv1.UnimplementedTaskServiceServer
	c Containers
}

func (s *taskServer) Create(ctx context.Context, req *gantryv1.CreateTaskRequest) (*gantryv1.TaskState, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	return s.c.CreateTask(ctx, Namespace(ctx), req)
}

func (s *taskServer) Start(ctx context.Context, req *gantryv1.TaskRequest) (*gantryv1.TaskState, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	return s.c.StartTask(ctx, Namespace(ctx), req.GetRef())
}

func (s *taskServer) State(ctx context.Context, req *gantryv1.TaskRequest) (*gantryv1.TaskState, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	return s.c.TaskState(ctx, Namespace(ctx), req.GetRef(), req.GetExecId())
}

func (s *taskServer) Kill(ctx context.Context, req *gantryv1.KillTaskRequest) (*gantryv1.TaskEmpty, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	return &gantryv1.TaskEmpty{}, s.c.KillTask(ctx, Namespace(ctx), req)
}

func (s *taskServer) Wait(ctx context.Context, req *gantryv1.TaskRequest) (*gantryv1.TaskState, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	return s.c.WaitTask(ctx, Namespace(ctx), req.GetRef(), req.GetExecId())
}

func (s *taskServer) Delete(ctx context.Context, req *gantryv1.DeleteTaskRequest) (*gantryv1.TaskState, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	return s.c.DeleteTask(ctx, Namespace(ctx), req)
}

func (s *taskServer) Exec(ctx context.Context, req *gantryv1.ExecTaskRequest) (*gantryv1.TaskState, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	if err := required("exec_id", req.GetExecId()); err != nil {
		return nil, err
	}
	if len(req.GetArgs()) == 0 {
		return nil, fmt.Errorf("args: required: %w", errdefs.ErrInvalidArgument)
	}
	return s.c.ExecTask(ctx, Namespace(ctx), req)
}

func (s *taskServer) Pause(ctx context.Context, req *gantryv1.TaskRequest) (*gantryv1.TaskEmpty, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	return &gantryv1.TaskEmpty{}, s.c.PauseTask(ctx, Namespace(ctx), req.GetRef())
}

func (s *taskServer) Resume(ctx context.Context, req *gantryv1.TaskRequest) (*gantryv1.TaskEmpty, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	return &gantryv1.TaskEmpty{}, s.c.ResumeTask(ctx, Namespace(ctx), req.GetRef())
}

func (s *taskServer) Pids(ctx context.Context, req *gantryv1.TaskRequest) (*gantryv1.PidsTaskResponse, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	p, err := s.c.TaskPids(ctx, Namespace(ctx), req.GetRef())
	if err != nil {
		return nil, err
	}
	return &gantryv1.PidsTaskResponse{Pids: p}, nil
}

func (s *taskServer) Stats(ctx context.Context, req *gantryv1.TaskRequest) (*gantryv1.StatsTaskResponse, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	d, err := s.c.TaskStats(ctx, Namespace(ctx), req.GetRef())
	if err != nil {
		return nil, err
	}
	return &gantryv1.StatsTaskResponse{Data: d}, nil
}

func (s *taskServer) ResizePty(ctx context.Context, req *gantryv1.ResizePtyTaskRequest) (*gantryv1.TaskEmpty, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	return &gantryv1.TaskEmpty{}, s.c.ResizeTaskPty(ctx, Namespace(ctx), req)
}

func (s *taskServer) CloseStdin(ctx context.Context, req *gantryv1.TaskRequest) (*gantryv1.TaskEmpty, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	return &gantryv1.TaskEmpty{}, s.c.CloseTaskStdin(ctx, Namespace(ctx), req.GetRef(), req.GetExecId())
}

// Attach copies the stream's data to the process's stdin until the client
// closes its side.
func (s *taskServer) Attach(stream gantryv1.TaskService_AttachServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("attach: first message: %w", err)
	}
	if err := required("ref", first.GetRef()); err != nil {
		return err
	}
	w, err := s.c.AttachTask(ctx, Namespace(ctx), first.GetRef(), first.GetExecId())
	if err != nil {
		return err
	}
	defer w.Close()
	data := first.GetData()
	for {
		if len(data) > 0 {
			if _, err := w.Write(data); err != nil {
				return fmt.Errorf("attach: write stdin: %w", err)
			}
		}
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if err := w.Close(); err != nil {
				return fmt.Errorf("attach: %w", err)
			}
			return stream.SendAndClose(&gantryv1.TaskEmpty{})
		}
		if err != nil {
			return err
		}
		data = msg.GetData()
	}
}

func (s *taskServer) Logs(req *gantryv1.LogsRequest, stream gantryv1.TaskService_LogsServer) error {
	if err := required("ref", req.GetRef()); err != nil {
		return err
	}
	ctx := stream.Context()
	return s.c.TaskLogs(ctx, Namespace(ctx), req, stream.Send)
}
