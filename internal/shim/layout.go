package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The files of a shim's state directory, <state>/shims/<namespace>/<id>/.
const (
	// SocketName is the shim's API socket (0600).
	SocketName = "shim.sock"
	// PidName holds the shim's pid.
	PidName = "shim.pid"
	// RecordName holds the shim's Options as JSON: enough to find the
	// bundle, the runtime, its root and the log again.
	RecordName = "shim.json"
	// ExitName holds the container init's exit (ExitRecord), written and
	// fsynced, then the directory fsynced, before the exit is reported.
	ExitName = "exit.json"
	// InitPidName holds the container init's pid, as the runtime wrote it.
	InitPidName = "init.pid"
	// ShimLogName is the shim's own log (its stderr).
	ShimLogName = "shim.log"
	// RuntimeLogName is the runtime's JSON log (--log).
	RuntimeLogName = "runtime.json"
)

// Options configure one shim; gantryd passes them as flags (Args).
type Options struct {
	// Namespace and ID name the container.
	Namespace string `json:"namespace"`
	ID        string `json:"id"`
	// StateDir is the shim's directory, <state>/shims/<namespace>/<id>.
	StateDir string `json:"stateDir"`
	// Bundle is the container's bundle directory.
	Bundle string `json:"bundle"`
	// Runtime is the runc-compatible binary; RuntimeRoot its --root.
	Runtime     string `json:"runtime"`
	RuntimeRoot string `json:"runtimeRoot,omitempty"`
	// LogPath is the container's log file (owned by gantryd, which removes
	// it with the container); LogMaxSize and LogMaxFiles rotate it.
	LogPath     string `json:"logPath"`
	LogMaxSize  int64  `json:"logMaxSize,omitempty"`
	LogMaxFiles int    `json:"logMaxFiles,omitempty"`
	// Stdin keeps a pipe to the container's stdin (fed by Attach).
	Stdin bool `json:"stdin,omitempty"`
	// Timeout bounds each runtime call.
	Timeout time.Duration `json:"timeout,omitempty"`
	// NoPivot passes --no-pivot to create.
	NoPivot bool `json:"noPivot,omitempty"`
	// DeleteOnExit runs the runtime's delete as soon as the container's
	// init has exited (its exit is recorded first), rather than when
	// Delete is called: for a container that is removed once it exits
	// (`gantry run --rm`), the runtime's delete then overlaps with the
	// client learning of the exit. Delete still waits for it and answers
	// only once the runtime's state is gone.
	DeleteOnExit bool `json:"deleteOnExit,omitempty"`
	// Start creates and starts the container in one runtime call (`run
	// --detach`) instead of `create`: the shim reports "ok" with the
	// container running (or already exited), and Start is refused.
	Start bool `json:"start,omitempty"`
	// HoldOutput, with Start, holds the init's output for its first live
	// attacher (AttachOutput), as an exec's always is: up to
	// shimapi.OutputHoldMax, then the process waits for the attacher (at
	// most AttachWait) rather than lose output, so a client that attaches
	// right after the start sees everything.
	HoldOutput bool `json:"holdOutput,omitempty"`
}

// Args returns o as gantry-shim flags.
func (o Options) Args() []string {
	a := []string{
		"--namespace", o.Namespace, "--id", o.ID, "--state-dir", o.StateDir,
		"--bundle", o.Bundle, "--runtime", o.Runtime, "--log-path", o.LogPath,
	}
	if o.RuntimeRoot != "" {
		a = append(a, "--runtime-root", o.RuntimeRoot)
	}
	if o.LogMaxSize > 0 {
		a = append(a, "--log-max-size", strconv.FormatInt(o.LogMaxSize, 10))
	}
	if o.LogMaxFiles > 0 {
		a = append(a, "--log-max-files", strconv.Itoa(o.LogMaxFiles))
	}
	if o.Stdin {
		a = append(a, "--stdin")
	}
	if o.Timeout > 0 {
		a = append(a, "--timeout", o.Timeout.String())
	}
	if o.NoPivot {
		a = append(a, "--no-pivot")
	}
	if o.DeleteOnExit {
		a = append(a, "--delete-on-exit")
	}
	if o.Start {
		a = append(a, "--start")
	}
	if o.HoldOutput {
		a = append(a, "--hold-output")
	}
	return a
}

// Validate checks the options that must be set.
func (o Options) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"--namespace", o.Namespace}, {"--id", o.ID}, {"--state-dir", o.StateDir},
		{"--bundle", o.Bundle}, {"--runtime", o.Runtime}, {"--log-path", o.LogPath},
	} {
		if f.v == "" {
			return fmt.Errorf("%s: required: %w", f.name, errInvalid)
		}
	}
	for _, f := range []struct{ name, v string }{
		{"--state-dir", o.StateDir}, {"--bundle", o.Bundle}, {"--log-path", o.LogPath},
	} {
		if !filepath.IsAbs(f.v) {
			return fmt.Errorf("%s %q: not an absolute path: %w", f.name, f.v, errInvalid)
		}
	}
	return nil
}

// Dir returns the state directory of a shim under stateRoot
// (<state>/shims).
func Dir(stateRoot, namespace, id string) string {
	return filepath.Join(stateRoot, namespace, id)
}

// ExitRecord is a durable exit status. OOMKilled, for the container's
// init, tells that the kernel's OOM killer killed a process of the
// container (its cgroup's count was above 0 when the init exited); a
// record written before the field existed reads as false.
type ExitRecord struct {
	Pid        int       `json:"pid"`
	ExitStatus int       `json:"exitStatus"`
	ExitedAt   time.Time `json:"exitedAt"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
}

// writeDurable writes data to dir/name through a temporary file: write,
// fsync, rename, fsync the directory. After it returns the file survives a
// crash of the machine.
func writeDurable(dir, name string, data []byte) error {
	return writeFile(dir, name, data, true)
}

// writeAtomic writes data to dir/name through a temporary file and a
// rename, without fsync: other processes see the whole file or none, but
// a crash of the machine may lose it. For what only matters while the
// machine is up (the shim's pid: after a reboot no shim is alive).
func writeAtomic(dir, name string, data []byte) error {
	return writeFile(dir, name, data, false)
}

func writeFile(dir, name string, data []byte, durable bool) error {
	tmp, err := os.CreateTemp(dir, "."+name+".")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return fmt.Errorf("fsync %s: %w", name, err)
		}
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if !durable {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

func writeJSON(dir, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return writeDurable(dir, name, append(data, '\n'))
}

// ReadExit reads the exit record of a state directory; ok is false when
// none was written.
func ReadExit(dir string) (rec ExitRecord, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, ExitName))
	if errors.Is(err, os.ErrNotExist) {
		return rec, false, nil
	}
	if err != nil {
		return rec, false, fmt.Errorf("read exit record: %w", err)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, false, fmt.Errorf("%s: %w", filepath.Join(dir, ExitName), err)
	}
	return rec, true, nil
}
