package services

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/internal/services/errgrpc"
	"github.com/gantry-project/gantry/internal/snapshot"
)

// Backends are the domain objects the services serve.
type Backends struct {
	Images      Images
	Maintenance Maintenance
	Content     Content
	Snapshotter snapshot.Snapshotter
	// Containers serves the container and task services, Events the event
	// service; nil leaves them unimplemented.
	Containers Containers
	Events     Events
	// Info describes the daemon for SystemService.Info and Version.
	Info DaemonInfo
	// Logger receives one Debug line per call and the errors of calls.
	Logger *slog.Logger
}

// DaemonInfo is static information about the running daemon.
type DaemonInfo struct {
	Version     string
	Root        string
	State       string
	Address     string
	Snapshotter string
	PID         int
}

// ServerOptions returns the interceptors every gantryd server needs: they
// put the call's namespace in the context (refusing a malformed one) and
// turn returned errors into gRPC statuses.
func ServerOptions(logger *slog.Logger) []grpc.ServerOption {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ns, err := namespaceFromIncoming(ctx)
		if err != nil {
			return nil, errgrpc.ToGRPC(err)
		}
		resp, err := handler(WithNamespace(ctx, ns), req)
		logCall(ctx, logger, info.FullMethod, ns, err)
		return resp, errgrpc.ToGRPC(err)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ns, err := namespaceFromIncoming(ss.Context())
		if err != nil {
			return errgrpc.ToGRPC(err)
		}
		err = handler(srv, &nsStream{ServerStream: ss, ctx: WithNamespace(ss.Context(), ns)})
		logCall(ss.Context(), logger, info.FullMethod, ns, err)
		return errgrpc.ToGRPC(err)
	}
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream)}
}

func logCall(ctx context.Context, logger *slog.Logger, method, ns string, err error) {
	if err != nil {
		logger.LogAttrs(ctx, slog.LevelInfo, "call failed", slog.String("method", method), slog.String("namespace", ns), slog.String("error", err.Error()))
		return
	}
	logger.LogAttrs(ctx, slog.LevelDebug, "call", slog.String("method", method), slog.String("namespace", ns))
}

type nsStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *nsStream) Context() context.Context { return s.ctx }

// Register adds every service to s.
func Register(s *grpc.Server, b Backends) {
	gantryv1.RegisterImageServiceServer(s, &imageServer{images: b.Images})
	gantryv1.RegisterContentServiceServer(s, &contentServer{content: b.Content})
	gantryv1.RegisterSnapshotServiceServer(s, &snapshotServer{sn: b.Snapshotter})
	gantryv1.RegisterSystemServiceServer(s, &systemServer{m: b.Maintenance, info: b.Info})
	if b.Containers != nil {
		gantryv1.RegisterContainerServiceServer(s, &containerServer{c: b.Containers})
		gantryv1.RegisterTaskServiceServer(s, &taskServer{c: b.Containers})
	}
	if b.Events != nil {
		gantryv1.RegisterEventServiceServer(s, &eventServer{bus: b.Events})
	}
}
