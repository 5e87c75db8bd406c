package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// listen opens the unix socket at path: its directory is created root-owned
// with mode 0711 (anyone may traverse to the socket, nobody may list or
// replace it), the socket itself gets mode 0660. A socket left by a dead
// daemon is replaced; one that a live daemon answers on is an error.
func listen(path string, logger *slog.Logger) (net.Listener, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("create socket directory %s: %w", dir, err)
		}
		if err := os.Chmod(dir, 0o711); err != nil {
			return nil, fmt.Errorf("chmod socket directory %s: %w", dir, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("socket directory %s: %w", dir, err)
	} else if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o022 != 0 {
		logger.Warn("socket directory is writable by group or others; prefer a root-owned 0711 directory", "dir", dir, "mode", st.Mode().Perm().String())
	}

	if st, err := os.Lstat(path); err == nil {
		if st.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("address %s: exists and is not a socket: %w", path, errdefs.ErrFailedPrecondition)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("address %s: another daemon is listening on it: %w", path, errdefs.ErrFailedPrecondition)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod socket %s: %w", path, err)
	}
	return l, nil
}
