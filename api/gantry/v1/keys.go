package gantryv1

// The string keys of the API that clients and gantryd share, written by
// hand (a .proto cannot hold a string constant).

// LabelAutoRemove on a container (value "true") says that its client
// removes it once it exits, as `gantry run --rm` does: gantryd then has its
// shim delete it with the runtime as soon as it exits, in parallel with the
// client learning of the exit.
const LabelAutoRemove = "io.gantry.container.autoremove"

// MetadataNamespace is the gRPC metadata key that names a call's namespace
// (one value; none means "default").
const MetadataNamespace = "gantry-namespace"
