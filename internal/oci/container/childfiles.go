package container

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// childFiles are the fds a bootstrap process gets after its stdio: first
// the --preserve-fds ones (3, 4, ...), then ours. Both entry paths (create
// and exec) build their child's fd table with it; its numbers are the ones
// the child sees, and all of them are named to the C bootstrap as the fds
// to keep.
type childFiles struct {
	files  []*os.File
	closer []*os.File // ours to close once the child has them
}

func newChildFiles(preserve int) *childFiles {
	c := &childFiles{}
	for i := 0; i < preserve; i++ {
		c.files = append(c.files, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(3+i)))
	}
	return c
}

// add passes f to the child and returns its fd number there.
func (c *childFiles) add(f *os.File) int {
	c.files = append(c.files, f)
	return 2 + len(c.files)
}

// keep lists every fd number the child must keep open.
func (c *childFiles) keep() []int {
	out := make([]int, len(c.files))
	for i := range c.files {
		out[i] = 3 + i
	}
	return out
}

// close closes the files this process opened for the child.
func (c *childFiles) close() {
	for _, f := range c.closer {
		f.Close()
	}
}

// addSeccompListener connects to a seccomp agent's listenerPath and passes
// the connection to the child, which sends the notify fd on it.
func (c *childFiles) addSeccompListener(path string) (int, error) {
	f, err := dialSeccompListener(path)
	if err != nil {
		return -1, err
	}
	c.closer = append(c.closer, f)
	return c.add(f), nil
}

// dialSeccompListener connects to a seccomp agent's listenerPath; the
// process sends the notify fd on the connection.
func dialSeccompListener(path string) (*os.File, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp.listenerPath %s: %w", path, err)
	}
	f, err := conn.(*net.UnixConn).File()
	conn.Close()
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp.listenerPath: %w", err)
	}
	return f, nil
}

// socketPair returns the two ends of a close-on-exec unix stream socket
// pair: the bootstrap channel, and the in-process console socket of a
// foreground run or exec.
func socketPair(a, b string) (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), a), os.NewFile(uintptr(fds[1]), b), nil
}
