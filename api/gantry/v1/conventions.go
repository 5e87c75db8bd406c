package gantryv1

// The conventions of the API that clients and gantryd share beyond the
// messages, written by hand (a .proto cannot hold a string constant or a
// function): label, annotation and metadata keys and their values, and how
// a container's command reads with --init.

// LabelAutoRemove on a container says that it is removed once it exits.
// Its value says by whom:
//
//   - AutoRemoveClient ("true"): its client removes it, as a foreground
//     `gantry run --rm` does once it has the exit status;
//   - AutoRemoveDetached ("detached"): gantryd removes it itself when its
//     task exits (the whole delete: task, bundle, snapshot, record, with
//     the events of a delete), also when it exited while gantryd was down
//     (at gantryd's next start), as `gantry run -d --rm` needs: nobody
//     waits for it.
//
// With either value gantryd has its shim delete it with the runtime as
// soon as it exits, in parallel with whoever learns of the exit.
const LabelAutoRemove = "io.gantry.container.autoremove"

// The values of LabelAutoRemove.
const (
	AutoRemoveClient   = "true"
	AutoRemoveDetached = "detached"
)

// MetadataNamespace is the gRPC metadata key that names a call's namespace
// (one value; none means "default").
const MetadataNamespace = "gantry-namespace"

// AnnotationStopSignal is the OCI image annotation that gantryd copies from
// an image's StopSignal into a container's spec; `gantry stop` sends it
// instead of SIGTERM.
const AnnotationStopSignal = "org.opencontainers.image.stopSignal"

// InitPath is where gantryd mounts the init of `run --init` in a container;
// the container's process.args then start with InitPath, "--".
const InitPath = "/sbin/gantry-init"

// UserArgs returns the user's command from a container's process.args:
// without the InitPath and "--" that `run --init` puts in front, as docker
// shows a container's command. Other args are returned as they are. The
// result shares args' backing array.
func UserArgs(args []string) []string {
	if len(args) >= 2 && args[0] == InitPath && args[1] == "--" {
		return args[2:]
	}
	return args
}
