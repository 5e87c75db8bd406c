package v1

import (
	"encoding/json"
	"time"
)

// Version is the protocol version every Request carries. A shim answers a
// request of another version with an error of kind KindNotImplemented; a
// new version adds methods or fields, never changes the meaning of one.
const Version = "gantry.shim.v1"

// The methods. Params and Result name the request and response types.
const (
	MethodConnect    = "Connect"    // ConnectRequest -> ConnectResponse
	MethodStart      = "Start"      // StartRequest -> StateResponse
	MethodState      = "State"      // StateRequest -> StateResponse
	MethodKill       = "Kill"       // KillRequest -> Empty
	MethodExec       = "Exec"       // ExecRequest -> StateResponse
	MethodResizePty  = "ResizePty"  // ResizePtyRequest -> Empty
	MethodCloseStdin = "CloseStdin" // CloseStdinRequest -> Empty
	MethodAttach     = "Attach"     // AttachRequest -> Empty, then raw bytes to stdin
	MethodPause      = "Pause"      // Empty -> Empty
	MethodResume     = "Resume"     // Empty -> Empty
	MethodPids       = "Pids"       // Empty -> PidsResponse
	MethodStats      = "Stats"      // Empty -> StatsResponse
	MethodUpdate     = "Update"     // UpdateRequest -> Empty
	MethodWait       = "Wait"       // WaitRequest -> StateResponse (once exited)
	MethodDelete     = "Delete"     // DeleteRequest -> StateResponse
	MethodShutdown   = "Shutdown"   // ShutdownRequest -> Empty

	// MethodAttachOutput was added to gantry.shim.v1 later: an older shim
	// answers it with KindNotImplemented (and its execs write to the log).
	MethodAttachOutput = "AttachOutput" // AttachOutputRequest -> Empty, then output frames
)

// Error kinds, as errdefs names them; the client maps them back.
const (
	KindNotFound           = "not_found"
	KindAlreadyExists      = "already_exists"
	KindInvalidArgument    = "invalid_argument"
	KindFailedPrecondition = "failed_precondition"
	KindUnavailable        = "unavailable"
	KindNotImplemented     = "not_implemented"
	KindUnknown            = "unknown"
)

// Statuses of a process (the container's init or an exec).
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusPaused  = "paused"
	StatusStopped = "stopped"
)

// Request is the one line a client sends.
type Request struct {
	Version string          `json:"version"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

// Response is the one line the shim answers; exactly one of Result and
// Error is set (Result may be null for Empty).
type Response struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Error is a failed request.
type Error struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// Empty is a request or result without fields.
type Empty struct{}

// ConnectRequest asks who the shim is (gantryd calls it on reconnect).
type ConnectRequest struct{}

// ConnectResponse identifies the shim and its container.
type ConnectResponse struct {
	Version   string `json:"version"`
	Namespace string `json:"namespace"`
	ID        string `json:"id"`
	Bundle    string `json:"bundle"`
	ShimPid   int    `json:"shimPid"`
	Pid       int    `json:"pid"`
	LogPath   string `json:"logPath"`
}

// StartRequest starts the container's process.
type StartRequest struct {
	// HoldOutput holds the init's output for its first live attacher, as
	// a create with Start and HoldOutput does (a start-on-create that
	// found the container only created goes on with it). A shim that
	// predates it ignores it.
	HoldOutput bool `json:"holdOutput,omitempty"`
}

// StateRequest asks for the state of the container (ExecID empty) or of
// one exec.
type StateRequest struct {
	ExecID string `json:"execID,omitempty"`
}

// StateResponse is the state of the container or of one exec. ExitStatus
// and ExitedAt are set once Status is "stopped"; the exit has then been
// written durably to the shim's state directory. OOMKilled, of the
// container's init once stopped, tells that the kernel's OOM killer killed
// a process of the container while it ran (added later to gantry.shim.v1:
// an older shim never sets it).
type StateResponse struct {
	ID         string    `json:"id"`
	ExecID     string    `json:"execID,omitempty"`
	Pid        int       `json:"pid"`
	Status     string    `json:"status"`
	ExitStatus int       `json:"exitStatus"`
	ExitedAt   time.Time `json:"exitedAt,omitzero"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
	Terminal   bool      `json:"terminal,omitempty"`
}

// KillRequest signals the container's init (All: every process of the
// container, through the runtime) or one exec's process.
type KillRequest struct {
	ExecID string `json:"execID,omitempty"`
	Signal int    `json:"signal"`
	All    bool   `json:"all,omitempty"`
}

// ExecRequest starts a process in the running container. Process is a
// runtime-spec process object (its "terminal" picks a pty). Its stdout and
// stderr go to the container's log; with Stdin, its stdin is a pipe that
// Attach feeds.
type ExecRequest struct {
	ExecID  string          `json:"execID"`
	Process json.RawMessage `json:"process"`
	Stdin   bool            `json:"stdin,omitempty"`
}

// ResizePtyRequest sets the pty size of the container or of one exec.
type ResizePtyRequest struct {
	ExecID string `json:"execID,omitempty"`
	Width  uint16 `json:"width"`
	Height uint16 `json:"height"`
}

// CloseStdinRequest closes the stdin of the container or of one exec.
type CloseStdinRequest struct {
	ExecID string `json:"execID,omitempty"`
}

// AttachRequest turns the connection, after the response, into a byte
// stream copied to the stdin of the container or of one exec. The stream's
// end does not close stdin (CloseStdin does).
type AttachRequest struct {
	ExecID string `json:"execID,omitempty"`
}

// AttachOutputRequest turns the connection, after the response, into the
// live output of the container or of one exec: frames of a 5-byte header
// (OutputStdout or OutputStderr, then the data's length as a big-endian
// uint32) and the raw bytes, as the process wrote them (a terminal's output
// is all OutputStdout). The shim closes the connection once the process's
// output has ended (after its exit). An exec's output goes only to its
// attachers: what it writes before the first one arrives is held (up to
// OutputHoldMax bytes). The container's output also goes to its log.
type AttachOutputRequest struct {
	ExecID string `json:"execID,omitempty"`
}

// Output streams of an AttachOutput frame.
const (
	OutputStdout = 1
	OutputStderr = 2
)

// OutputHoldMax bounds the output of an exec held until its first attacher.
const OutputHoldMax = 256 << 10

// PidsResponse lists the container's processes (host pids).
type PidsResponse struct {
	Pids []int `json:"pids"`
}

// StatsResponse is the runtime's `events --stats` data, as it printed it.
type StatsResponse struct {
	Data json.RawMessage `json:"data"`
}

// UpdateRequest applies a runtime-spec linux.resources object.
type UpdateRequest struct {
	Resources json.RawMessage `json:"resources"`
}

// WaitRequest blocks until the container's init (or one exec) has exited
// and its exit is recorded.
type WaitRequest struct {
	ExecID string `json:"execID,omitempty"`
}

// DeleteRequest deletes one exited exec, or the container (ExecID empty):
// the runtime's delete, then the shim removes its state directory and
// exits. Force kills a container that still runs first.
type DeleteRequest struct {
	ExecID string `json:"execID,omitempty"`
	Force  bool   `json:"force,omitempty"`
}

// ShutdownRequest stops the shim. It is refused while the container
// exists, unless Now (the container is then left to the runtime).
type ShutdownRequest struct {
	Now bool `json:"now,omitempty"`
}
