package seccomp

import (
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// SendNotifyFd connects to the seccomp agent's unix stream socket at
// listenerPath and sends it, in one connection, the container process state
// as JSON with fd attached as SCM_RIGHTS, as runtime-spec config-linux.md
// ("Seccomp", listenerPath) describes. It sets state.Fds to ["seccompFd"]
// (the name of the one fd it sends) and state.Version to specs.Version when
// empty; the caller fills Pid, State and Metadata (from listenerMetadata).
// state itself is not modified. The connection is closed after the send.
//
// When called after Load in the filtered process, the syscalls it makes
// (socket, connect, sendmsg, close) go through the filter: a profile that
// sends them to the agent makes the call wait on that same agent.
func SendNotifyFd(listenerPath string, state *specs.ContainerProcessState, fd int) error {
	if state == nil {
		return fmt.Errorf("send seccomp fd to %q: no container process state: %w", listenerPath, errdefs.ErrInvalidArgument)
	}
	if fd < 0 {
		return fmt.Errorf("send seccomp fd to %q: invalid fd %d: %w", listenerPath, fd, errdefs.ErrInvalidArgument)
	}
	st := *state
	st.Fds = []string{specs.SeccompFdName}
	if st.Version == "" {
		st.Version = specs.Version
	}
	msg, err := json.Marshal(&st)
	if err != nil {
		return fmt.Errorf("send seccomp fd to %q: encode state: %w", listenerPath, err)
	}

	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("send seccomp fd to %q: create socket: %w", listenerPath, err)
	}
	defer unix.Close(sock)
	if err := unix.Connect(sock, &unix.SockaddrUnix{Name: listenerPath}); err != nil {
		return fmt.Errorf("send seccomp fd: connect to %q: %w", listenerPath, err)
	}

	// The fd travels with the first byte; a stream socket may take the
	// rest in further writes.
	oob := unix.UnixRights(fd)
	for len(msg) > 0 {
		n, err := unix.SendmsgN(sock, msg, oob, nil, unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("send seccomp fd to %q: %w", listenerPath, err)
		}
		msg = msg[n:]
		oob = nil
	}
	return nil
}
