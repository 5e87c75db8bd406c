package services

import (
	"context"
	"fmt"

	grpcmd "google.golang.org/grpc/metadata"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/metadata"
)

// NamespaceKey is the gRPC metadata key that names a call's namespace.
const NamespaceKey = gantryv1.MetadataNamespace

// DefaultNamespace is used when a call names none.
const DefaultNamespace = "default"

// ValidateNamespace checks a namespace name by the metadata store's rule.
func ValidateNamespace(ns string) error { return metadata.ValidateNamespace(ns) }

type namespaceCtxKey struct{}

// namespaceFromIncoming reads the namespace of an incoming call.
func namespaceFromIncoming(ctx context.Context) (string, error) {
	md, _ := grpcmd.FromIncomingContext(ctx)
	vals := md.Get(NamespaceKey)
	switch len(vals) {
	case 0:
		return DefaultNamespace, nil
	case 1:
		if vals[0] == "" {
			return DefaultNamespace, nil
		}
		return vals[0], ValidateNamespace(vals[0])
	default:
		return "", fmt.Errorf("metadata %q: %d values, want one: %w", NamespaceKey, len(vals), errdefs.ErrInvalidArgument)
	}
}

// WithNamespace returns ctx carrying ns for the services.
func WithNamespace(ctx context.Context, ns string) context.Context {
	return context.WithValue(ctx, namespaceCtxKey{}, ns)
}

// Namespace returns the namespace the interceptors put in ctx.
func Namespace(ctx context.Context) string {
	if ns, ok := ctx.Value(namespaceCtxKey{}).(string); ok {
		return ns
	}
	return DefaultNamespace
}
