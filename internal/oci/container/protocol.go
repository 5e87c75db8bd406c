package container

import (
	"fmt"
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Messages between the parent (create) and the container's init, as
// binary frames (initmsg.go) on the bootstrap socket once the C bootstrap
// is done:
//
//	parent -> init  config      the InitConfig
//	init -> parent  hooks       the mounts are in place: run prestart and
//	                            createRuntime hooks now
//	parent -> init  hooks-done
//	init -> parent  ready       set up; waiting on the exec fifo
//	init -> parent  error       Error says what failed; init exits
const (
	msgConfig    = "config"
	msgHooks     = "hooks"
	msgHooksDone = "hooks-done"
	msgReady     = "ready"
	msgError     = "error"
)

type message struct {
	Type   string      `json:"type"`
	Error  string      `json:"error,omitempty"`
	Config *InitConfig `json:"config,omitempty"`
}

// InitConfig is what the init needs to finish the container.
type InitConfig struct {
	ID           string      `json:"id"`
	Spec         *specs.Spec `json:"spec"`
	Bundle       string      `json:"bundle"`
	Rootfs       string      `json:"rootfs"`
	NoPivot      bool        `json:"no_pivot"`
	NoNewKeyring bool        `json:"no_new_keyring"`
	PreserveFDs  int         `json:"preserve_fds"`
	NewMountNS   bool        `json:"new_mount_ns"`
	NewUserNS    bool        `json:"new_user_ns"`
	NewCgroupNS  bool        `json:"new_cgroup_ns"`
	NewUTSNS     bool        `json:"new_uts_ns"`
	// fds in the init process
	FifoFD     int `json:"fifo_fd"`
	ConsoleFD  int `json:"console_fd"`  // -1: no terminal
	ListenerFD int `json:"listener_fd"` // -1: no seccomp notify listener
	// Pid is the init's pid as the runtime sees it (for hook state).
	Pid int `json:"pid"`
	// Exec: the process joins a running container (Spec.Process is the
	// process to run): no rootfs, hooks or exec fifo.
	Exec bool `json:"exec,omitempty"`
	// Seccomp is the compiled filter of linux.seccomp (seccomp.Program's
	// binary form), compiled or taken from the cache by the runtime.
	Seccomp []byte `json:"seccomp,omitempty"`
}

func (m *message) err() error {
	if m.Type == msgError {
		return fmt.Errorf("%s", m.Error)
	}
	return nil
}

func send(w io.Writer, m message) error {
	return writeFrame(w, m)
}

// expect reads the next message and checks its type; an error message
// becomes the returned error.
func expect(r io.Reader, typ string) (*message, error) {
	m, err := readFrame(r)
	if err != nil {
		return nil, fmt.Errorf("container init exited before %q: %w", typ, err)
	}
	if err := m.err(); err != nil {
		return nil, err
	}
	if m.Type != typ {
		return nil, fmt.Errorf("container init: got %q, want %q", m.Type, typ)
	}
	return m, nil
}
