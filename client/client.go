package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/internal/errdefs"
)

// DefaultAddress is gantryd's default socket.
const DefaultAddress = "/run/gantry/gantryd.sock"

// DefaultNamespace is the namespace of calls that name none.
const DefaultNamespace = "default"

// namespaceKey is the gRPC metadata key of the namespace.
const namespaceKey = gantryv1.MetadataNamespace

// The error kinds of gantryd's answers; they are the values of
// internal/errdefs, so errors.Is works against either.
var (
	ErrNotFound           = errdefs.ErrNotFound
	ErrAlreadyExists      = errdefs.ErrAlreadyExists
	ErrInvalidArgument    = errdefs.ErrInvalidArgument
	ErrFailedPrecondition = errdefs.ErrFailedPrecondition
	ErrUnavailable        = errdefs.ErrUnavailable
	ErrNotImplemented     = errdefs.ErrNotImplemented
)

// UnreachableError says that no gantryd answers at Address. It is of kind
// ErrUnavailable.
type UnreachableError struct {
	Address string
	Err     error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("connect to gantryd at %s: %v", e.Address, e.Err)
}

// Unwrap returns ErrUnavailable and the dial error.
func (e *UnreachableError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// Client is a connection to gantryd. It is safe for concurrent use.
type Client struct {
	conn      *grpc.ClientConn
	address   string
	namespace string

	images    gantryv1.ImageServiceClient
	content   gantryv1.ContentServiceClient
	snapshots gantryv1.SnapshotServiceClient
	system    gantryv1.SystemServiceClient
	ctrs      gantryv1.ContainerServiceClient
	tasks     gantryv1.TaskServiceClient
	events    gantryv1.EventServiceClient

	mu      sync.Mutex
	dialErr error // the last failed dial, to tell "daemon down" from other Unavailable answers
}

// Option configures a Client.
type Option func(*options)

type options struct {
	namespace string
	dialer    func(ctx context.Context, address string) (net.Conn, error)
}

// WithNamespace sets the namespace of every call (default "default").
func WithNamespace(ns string) Option { return func(o *options) { o.namespace = ns } }

// WithDialer replaces the unix-socket dialer (tests use in-memory pipes).
func WithDialer(d func(ctx context.Context, address string) (net.Conn, error)) Option {
	return func(o *options) { o.dialer = d }
}

// SocketPath returns the socket path of an address given as a path or as
// unix://path.
func SocketPath(address string) string {
	return strings.TrimPrefix(address, "unix://")
}

// New returns a client for the gantryd listening at address ("" means
// DefaultAddress). It does not connect: the first call does, and fails
// with an *UnreachableError when no daemon listens.
func New(address string, opts ...Option) (*Client, error) {
	if address == "" {
		address = DefaultAddress
	}
	o := options{namespace: DefaultNamespace}
	for _, opt := range opts {
		opt(&o)
	}
	if o.namespace == "" {
		o.namespace = DefaultNamespace
	}
	c := &Client{address: address, namespace: o.namespace}
	dial := o.dialer
	if dial == nil {
		path := SocketPath(address)
		dial = func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	}
	conn, err := grpc.NewClient("passthrough:///gantryd",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			conn, err := dial(ctx, a)
			c.mu.Lock()
			c.dialErr = err
			c.mu.Unlock()
			return conn, err
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)),
		grpc.WithChainUnaryInterceptor(c.unaryInterceptor),
		grpc.WithChainStreamInterceptor(c.streamInterceptor),
	)
	if err != nil {
		return nil, fmt.Errorf("gantryd client for %s: %w", address, err)
	}
	c.conn = conn
	c.images = gantryv1.NewImageServiceClient(conn)
	c.content = gantryv1.NewContentServiceClient(conn)
	c.snapshots = gantryv1.NewSnapshotServiceClient(conn)
	c.system = gantryv1.NewSystemServiceClient(conn)
	c.ctrs = gantryv1.NewContainerServiceClient(conn)
	c.tasks = gantryv1.NewTaskServiceClient(conn)
	c.events = gantryv1.NewEventServiceClient(conn)
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Address returns the address the client dials.
func (c *Client) Address() string { return c.address }

// Namespace returns the namespace of the client's calls.
func (c *Client) Namespace() string { return c.namespace }

func (c *Client) withNamespace(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, namespaceKey, c.namespace)
}

func (c *Client) unaryInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return c.convert(invoker(c.withNamespace(ctx), method, req, reply, cc, opts...))
}

func (c *Client) streamInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(c.withNamespace(ctx), desc, cc, method, opts...)
	if err != nil {
		return nil, c.convert(err)
	}
	return &convertingStream{ClientStream: s, c: c}, nil
}

// convertingStream converts the errors of a stream's messages.
type convertingStream struct {
	grpc.ClientStream
	c *Client
}

func (s *convertingStream) RecvMsg(m any) error {
	return s.c.convert(s.ClientStream.RecvMsg(m))
}

func (s *convertingStream) SendMsg(m any) error {
	return s.c.convert(s.ClientStream.SendMsg(m))
}

func (s *convertingStream) CloseSend() error {
	return s.c.convert(s.ClientStream.CloseSend())
}

// Error is an error answered by gantryd: its text is the daemon's and it
// unwraps to the error kind of its gRPC code.
type Error struct {
	Code    codes.Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the error kind of the code, or nil for codes without one.
func (e *Error) Unwrap() error {
	switch e.Code {
	case codes.NotFound:
		return ErrNotFound
	case codes.AlreadyExists:
		return ErrAlreadyExists
	case codes.InvalidArgument:
		return ErrInvalidArgument
	case codes.FailedPrecondition:
		return ErrFailedPrecondition
	case codes.Unavailable:
		return ErrUnavailable
	case codes.Unimplemented:
		return ErrNotImplemented
	case codes.Canceled:
		return context.Canceled
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	}
	return nil
}

// convert turns a gRPC error into an *Error, or an *UnreachableError when
// the connection to the daemon could not be made. io.EOF and nil pass. The
// message loses the kind words that only repeat what it says (a gantryd
// older than errdefs.TrimKinds on its side sends them): the code keeps the
// kind.
func (c *Client) convert(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if st.Code() == codes.Unavailable {
		c.mu.Lock()
		dialErr := c.dialErr
		c.mu.Unlock()
		if dialErr != nil {
			return &UnreachableError{Address: c.address, Err: dialErr}
		}
	}
	return &Error{Code: st.Code(), Message: errdefs.TrimKinds(st.Message())}
}

// IsUnreachable reports whether err says that gantryd could not be reached.
func IsUnreachable(err error) bool {
	var u *UnreachableError
	return errors.As(err, &u)
}
