package errgrpc

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code codes.Code
		kind error
		msg  string // the message on the wire; "" means err's text
	}{
		{"not found", fmt.Errorf("image %q: %w", "busybox", errdefs.ErrNotFound), codes.NotFound, errdefs.ErrNotFound, ""},
		{"exists", fmt.Errorf("tag: %w", errdefs.ErrAlreadyExists), codes.AlreadyExists, errdefs.ErrAlreadyExists, ""},
		{"invalid", fmt.Errorf("ref %q: empty: %w", "", errdefs.ErrInvalidArgument), codes.InvalidArgument, errdefs.ErrInvalidArgument, `ref "": empty`},
		{"precondition", fmt.Errorf("container c1 is not running: %w", errdefs.ErrFailedPrecondition), codes.FailedPrecondition, errdefs.ErrFailedPrecondition, "container c1 is not running"},
		{"unavailable", fmt.Errorf("registry: %w", errdefs.ErrUnavailable), codes.Unavailable, errdefs.ErrUnavailable, ""},
		{"not implemented", fmt.Errorf("export: %w", errdefs.ErrNotImplemented), codes.Unimplemented, errdefs.ErrNotImplemented, ""},
		{"kind twice", fmt.Errorf("shim Kill: %w: %w", fmt.Errorf("process has exited: %w", errdefs.ErrNotFound), errdefs.ErrNotFound), codes.NotFound, errdefs.ErrNotFound, "shim Kill: process has exited: not found"},
		{"kind in words", fmt.Errorf("no such container: %s: %w", "web", errdefs.ErrNotFound), codes.NotFound, errdefs.ErrNotFound, "no such container: web"},
		{"canceled", fmt.Errorf("pull: %w", context.Canceled), codes.Canceled, context.Canceled, ""},
		{"plain", errors.New("disk on fire"), codes.Unknown, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := ToGRPC(tt.err)
			if got := status.Code(g); got != tt.code {
				t.Fatalf("code = %v, want %v", got, tt.code)
			}
			back := ToNative(g)
			want := tt.msg
			if want == "" {
				want = tt.err.Error()
			}
			if back.Error() != want {
				t.Errorf("message = %q, want %q", back.Error(), want)
			}
			if tt.kind != nil && !errors.Is(back, tt.kind) {
				t.Errorf("errors.Is(%v, %v) = false", back, tt.kind)
			}
			if tt.kind == nil && errors.Unwrap(back) != nil {
				t.Errorf("unknown error unwraps to %v", errors.Unwrap(back))
			}
		})
	}
	if ToGRPC(nil) != nil || ToNative(nil) != nil {
		t.Error("nil must stay nil")
	}
	st := status.Error(codes.Aborted, "x")
	if ToGRPC(st) != st {
		t.Error("a status error must pass through ToGRPC unchanged")
	}
}
