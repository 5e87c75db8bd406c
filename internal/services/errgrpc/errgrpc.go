// Package errgrpc turns Gantry's error kinds (internal/errdefs) into gRPC
// status codes at the API boundary, and back. It is the only place where the
// mapping lives: services call ToGRPC on every error they return (through
// the interceptors of internal/services), and client/ calls ToNative on every
// error it receives.
package errgrpc

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// kinds pairs each error kind with its gRPC code, in the order ToGRPC tests
// them.
var kinds = []struct {
	kind error
	code codes.Code
}{
	{errdefs.ErrNotFound, codes.NotFound},
	{errdefs.ErrAlreadyExists, codes.AlreadyExists},
	{errdefs.ErrInvalidArgument, codes.InvalidArgument},
	{errdefs.ErrFailedPrecondition, codes.FailedPrecondition},
	{errdefs.ErrUnavailable, codes.Unavailable},
	{errdefs.ErrNotImplemented, codes.Unimplemented},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// Code returns the gRPC code for err's kind: codes.Unknown when err has none.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	for _, k := range kinds {
		if errors.Is(err, k.kind) {
			return k.code
		}
	}
	return codes.Unknown
}

// ToGRPC returns err as a gRPC status error whose code is err's kind and
// whose message is err's text without the kind words that only repeat it
// (errdefs.TrimKinds): the code carries the kind. An error that already is
// a status is returned as it is; nil stays nil.
func ToGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(Code(err), errdefs.TrimKinds(err.Error()))
}

// Error is an error received from gantryd: its text is the daemon's message
// and it unwraps to the matching errdefs kind, so errors.Is works across the
// API.
type Error struct {
	Code    codes.Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the errdefs kind of the error's code, or nil.
func (e *Error) Unwrap() error {
	for _, k := range kinds {
		if k.code == e.Code {
			return k.kind
		}
	}
	return nil
}

// ToNative turns a gRPC status error back into an *Error carrying the kind.
// Errors that are not statuses are returned unchanged; nil stays nil.
func ToNative(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return &Error{Code: st.Code(), Message: st.Message()}
}
