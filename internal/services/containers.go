package services

import (
	"context"
	"io"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/internal/events"
)

// Containers is what the container and task services need from the
// daemon: container records with their bundles and snapshots, and the
// tasks that run them. Every call names the namespace; containers are
// named by ref (id, name or unique id prefix). Implementations return
// errdefs kinds.
type Containers interface {
	// CreateContainer creates the container and, when req.task is set, its
	// task (the container is removed again if the task fails); the task's
	// state is then the second result.
	CreateContainer(ctx context.Context, ns string, req *gantryv1.CreateContainerRequest) (*gantryv1.Container, *gantryv1.TaskState, error)
	GetContainer(ctx context.Context, ns, ref string) (*gantryv1.Container, error)
	ListContainers(ctx context.Context, ns string) ([]*gantryv1.Container, error)
	DeleteContainer(ctx context.Context, ns string, req *gantryv1.DeleteContainerRequest) (*gantryv1.Container, error)

	// CreateTask launches the task's shim; with req.start it also starts
	// the task, in the same runtime call (see CreateTaskRequest).
	CreateTask(ctx context.Context, ns string, req *gantryv1.CreateTaskRequest) (*gantryv1.TaskState, error)
	StartTask(ctx context.Context, ns, ref string) (*gantryv1.TaskState, error)
	TaskState(ctx context.Context, ns, ref, execID string) (*gantryv1.TaskState, error)
	KillTask(ctx context.Context, ns string, req *gantryv1.KillTaskRequest) error
	WaitTask(ctx context.Context, ns, ref, execID string) (*gantryv1.TaskState, error)
	DeleteTask(ctx context.Context, ns string, req *gantryv1.DeleteTaskRequest) (*gantryv1.TaskState, error)
	ExecTask(ctx context.Context, ns string, req *gantryv1.ExecTaskRequest) (*gantryv1.TaskState, error)
	PauseTask(ctx context.Context, ns, ref string) error
	ResumeTask(ctx context.Context, ns, ref string) error
	TaskPids(ctx context.Context, ns, ref string) ([]int32, error)
	TaskStats(ctx context.Context, ns, ref string) ([]byte, error)
	ResizeTaskPty(ctx context.Context, ns string, req *gantryv1.ResizePtyTaskRequest) error
	CloseTaskStdin(ctx context.Context, ns, ref, execID string) error
	// AttachTask returns a writer to the stdin of the task or of an exec.
	AttachTask(ctx context.Context, ns, ref, execID string) (io.WriteCloser, error)
	// TaskLogs sends the log in batches; the first call has Ready set.
	TaskLogs(ctx context.Context, ns string, req *gantryv1.LogsRequest, send func(*gantryv1.LogsResponse) error) error
}

type containerServer struct {
	gantryv1.UnimplementedContainerServiceServer
	c Containers
}

func (s *containerServer) Create(ctx context.Context, req *gantryv1.CreateContainerRequest) (*gantryv1.CreateContainerResponse, error) {
	if err := required("image", req.GetImage()); err != nil {
		return nil, err
	}
	c, st, err := s.c.CreateContainer(ctx, Namespace(ctx), req)
	if err != nil {
		return nil, err
	}
	return &gantryv1.CreateContainerResponse{Container: c, Task: st}, nil
}

func (s *containerServer) Get(ctx context.Context, req *gantryv1.GetContainerRequest) (*gantryv1.GetContainerResponse, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	c, err := s.c.GetContainer(ctx, Namespace(ctx), req.GetRef())
	if err != nil {
		return nil, err
	}
	return &gantryv1.GetContainerResponse{Container: c}, nil
}

func (s *containerServer) List(ctx context.Context, _ *gantryv1.ListContainersRequest) (*gantryv1.ListContainersResponse, error) {
	cs, err := s.c.ListContainers(ctx, Namespace(ctx))
	if err != nil {
		return nil, err
	}
	return &gantryv1.ListContainersResponse{Containers: cs}, nil
}

func (s *containerServer) Delete(ctx context.Context, req *gantryv1.DeleteContainerRequest) (*gantryv1.DeleteContainerResponse, error) {
	if err := required("ref", req.GetRef()); err != nil {
		return nil, err
	}
	c, err := s.c.DeleteContainer(ctx, Namespace(ctx), req)
	if err != nil {
		return nil, err
	}
	return &gantryv1.DeleteContainerResponse{Container: c}, nil
}

// Events is the event bus the event service reads.
type Events interface {
	Subscribe(ctx context.Context, since uint64, filter events.Filter, fn func(events.Event) error) error
}

type eventServer struct {
	gantryv1.UnimplementedEventServiceServer
	bus Events
}

func (s *eventServer) Subscribe(req *gantryv1.SubscribeRequest, stream gantryv1.EventService_SubscribeServer) error {
	f, err := events.ParseFilter(req.GetFilters())
	if err != nil {
		return err
	}
	ctx := stream.Context()
	ns := Namespace(ctx)
	return s.bus.Subscribe(ctx, req.GetSince(), f, func(ev events.Event) error {
		if !req.GetAllNamespaces() && ev.Namespace != ns {
			return nil
		}
		return stream.Send(&gantryv1.Event{
			Sequence: ev.Sequence, Timestamp: timestamp(ev.Timestamp), Namespace: ev.Namespace,
			Topic: ev.Topic, Id: ev.ID, Attributes: ev.Attributes,
		})
	})
}
