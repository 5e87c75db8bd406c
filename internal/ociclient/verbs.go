package ociclient

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// CreateOptions are the flags of create.
type CreateOptions struct {
	// Bundle is the bundle directory (required).
	Bundle string
	// PidFile receives the container init's pid.
	PidFile string
	// ConsoleSocket is a unix socket that receives the pty master when the
	// config asks for a terminal.
	ConsoleSocket string
	// NoPivot passes --no-pivot.
	NoPivot bool
	// IO is the container's stdio; the runtime process gets it too, so its
	// stderr is not captured (its JSON log is).
	IO *IO
}

// Create runs `create`: the container exists, its process waits for Start.
func (r *Runtime) Create(ctx context.Context, id string, o CreateOptions) error {
	args, err := createArgs(o)
	if err != nil {
		return fmt.Errorf("create %s: %w", id, err)
	}
	io := o.IO
	if io == nil {
		io = &IO{}
	}
	_, _, err = r.run(ctx, call{verb: "create", args: append(args, id), io: io})
	return err
}

// createArgs are the flags of create (and run) for o.
func createArgs(o CreateOptions) ([]string, error) {
	if o.Bundle == "" {
		return nil, fmt.Errorf("bundle: empty path")
	}
	args := []string{"--bundle", o.Bundle}
	if o.PidFile != "" {
		args = append(args, "--pid-file", o.PidFile)
	}
	if o.ConsoleSocket != "" {
		args = append(args, "--console-socket", o.ConsoleSocket)
	}
	if o.NoPivot {
		args = append(args, "--no-pivot")
	}
	return args, nil
}

// RunDetached runs `run --detach`: the container is created and started
// in one runtime process (runc and gantry-oci both have it), which saves
// the process start-up of a separate `start`. The runtime runs the
// prestart, createRuntime, createContainer, startContainer and poststart
// hooks as for create and start; on a failed start it deletes the
// container itself. It returns once the container's process runs (which
// may have exited by then); the init is left to the caller's subreaper.
func (r *Runtime) RunDetached(ctx context.Context, id string, o CreateOptions) error {
	args, err := createArgs(o)
	if err != nil {
		return fmt.Errorf("run %s: %w", id, err)
	}
	io := o.IO
	if io == nil {
		io = &IO{}
	}
	_, _, err = r.run(ctx, call{verb: "run", args: append(append([]string{"--detach"}, args...), id), io: io})
	return err
}

// Start runs `start`.
func (r *Runtime) Start(ctx context.Context, id string) error {
	_, _, err := r.run(ctx, call{verb: "start", args: []string{id}})
	return err
}

// State is the runtime's `state` output (runtime-spec state plus the
// "created" time that runc and gantry-oci add).
type State struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Pid         int               `json:"pid"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Created     time.Time         `json:"created,omitempty"`
}

// State runs `state` and parses its JSON.
func (r *Runtime) State(ctx context.Context, id string) (*State, error) {
	out, _, err := r.run(ctx, call{verb: "state", args: []string{id}})
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, fmt.Errorf("runtime state %s: parse output: %w", id, err)
	}
	return &s, nil
}

// Kill runs `kill` with sig; all passes --all.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{}
	if all {
		args = append(args, "--all")
	}
	args = append(args, id, strconv.Itoa(int(sig)))
	_, _, err := r.run(ctx, call{verb: "kill", args: args})
	return err
}

// Delete runs `delete`; force passes --force.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	args := []string{}
	if force {
		args = append(args, "--force")
	}
	_, _, err := r.run(ctx, call{verb: "delete", args: append(args, id)})
	return err
}

// ExecOptions are the flags of exec.
type ExecOptions struct {
	// ProcessFile is a runtime-spec process JSON file (required).
	ProcessFile string
	// Detach returns once the process runs (the call then has a timeout);
	// otherwise Exec waits for the process, without a timeout.
	Detach bool
	// PidFile receives the process's pid.
	PidFile string
	// ConsoleSocket receives the pty master when the process asks for a
	// terminal.
	ConsoleSocket string
	// IO is the process's stdio.
	IO *IO
}

// Exec runs `exec --process`. Without Detach it returns the process's exit
// code (a non-zero code is not an error).
func (r *Runtime) Exec(ctx context.Context, id string, o ExecOptions) (int, error) {
	if o.ProcessFile == "" {
		return -1, fmt.Errorf("exec %s: process file: empty path", id)
	}
	args := []string{"--process", o.ProcessFile}
	if o.Detach {
		args = append(args, "--detach")
	}
	if o.PidFile != "" {
		args = append(args, "--pid-file", o.PidFile)
	}
	if o.ConsoleSocket != "" {
		args = append(args, "--console-socket", o.ConsoleSocket)
	}
	io := o.IO
	if io == nil {
		io = &IO{}
	}
	_, code, err := r.run(ctx, call{verb: "exec", args: append(args, id), io: io, noTimeout: !o.Detach})
	if err != nil && !o.Detach && code > 0 {
		// The process ran and exited non-zero, unless the runtime logged
		// an error of its own.
		if e, ok := err.(*Error); ok && e.Message == "" {
			return code, nil
		}
	}
	return code, err
}

// Pause runs `pause`.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	_, _, err := r.run(ctx, call{verb: "pause", args: []string{id}})
	return err
}

// Resume runs `resume`.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	_, _, err := r.run(ctx, call{verb: "resume", args: []string{id}})
	return err
}

// Ps runs `ps --format json` and returns the container's pids (in the
// caller's PID namespace).
func (r *Runtime) Ps(ctx context.Context, id string) ([]int, error) {
	out, _, err := r.run(ctx, call{verb: "ps", args: []string{"--format", "json", id}})
	if err != nil {
		return nil, err
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return nil, fmt.Errorf("runtime ps %s: parse output: %w", id, err)
	}
	return pids, nil
}

// Update runs `update --resources -` with resources, a runtime-spec
// linux.resources JSON object.
func (r *Runtime) Update(ctx context.Context, id string, resources []byte) error {
	if !json.Valid(resources) {
		return fmt.Errorf("update %s: resources: not valid JSON", id)
	}
	_, _, err := r.run(ctx, call{verb: "update", args: []string{"--resources", "-", id}, stdin: resources})
	return err
}

// Stats runs `events --stats` once and returns the event's "data" object
// as the runtime printed it (runc's stats layout).
func (r *Runtime) Stats(ctx context.Context, id string) (json.RawMessage, error) {
	out, _, err := r.run(ctx, call{verb: "events", args: []string{"--stats", id}})
	if err != nil {
		return nil, err
	}
	var ev struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(out, &ev); err != nil {
		return nil, fmt.Errorf("runtime events --stats %s: parse output: %w", id, err)
	}
	return ev.Data, nil
}

// ReadPidFile reads a pid file written by the runtime.
func ReadPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(string(trimSpace(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a pid", path, b)
	}
	return pid, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
