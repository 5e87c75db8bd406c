package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gantry-project/gantry/internal/ociclient"
)

// Found is one shim state directory found by Discover.
type Found struct {
	// Dir is the state directory; Socket the API socket in it.
	Dir    string
	Socket string
	// Options are what the shim was started with (shim.json).
	Options Options
	// ShimPid is the pid in shim.pid; Alive whether that process is still
	// the shim of Dir.
	ShimPid int
	Alive   bool
	// Exit is the durable exit record, when the container's init exited.
	Exit *ExitRecord
}

// Discover lists the shims under stateRoot (<state>/shims), as
// <namespace>/<id>/ directories. gantryd calls it at start: an Alive shim
// is reconnected with NewClient(Socket); a dead one is passed to Cleanup.
// A directory without shim.json (a shim that died while starting) is
// reported with empty Options and Alive false.
func Discover(stateRoot string) ([]Found, error) {
	nss, err := os.ReadDir(stateRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list shims: %w", err)
	}
	var found []Found
	for _, ns := range nss {
		if !ns.IsDir() {
			continue
		}
		ids, err := os.ReadDir(filepath.Join(stateRoot, ns.Name()))
		if err != nil {
			return nil, fmt.Errorf("list shims: %w", err)
		}
		for _, id := range ids {
			if !id.IsDir() {
				continue
			}
			dir := filepath.Join(stateRoot, ns.Name(), id.Name())
			f := Found{Dir: dir, Socket: filepath.Join(dir, SocketName)}
			if data, err := os.ReadFile(filepath.Join(dir, RecordName)); err == nil {
				if err := json.Unmarshal(data, &f.Options); err != nil {
					return nil, fmt.Errorf("%s: %w", filepath.Join(dir, RecordName), err)
				}
			}
			if pid, err := readPid(filepath.Join(dir, PidName)); err == nil {
				f.ShimPid = pid
				f.Alive = shimAlive(pid, dir)
			}
			if rec, ok, err := ReadExit(dir); err != nil {
				return nil, err
			} else if ok {
				f.Exit = &rec
			}
			found = append(found, f)
		}
	}
	return found, nil
}

// Cleanup removes what a dead shim left: the container (the runtime's
// delete --force, which also kills a container that outlived its shim and
// removes its cgroup) and the state directory. It returns the durable exit
// record when the shim wrote one; nil means the exit status is unknown.
// Cleanup refuses a live shim: ask it to Delete instead.
func Cleanup(ctx context.Context, f Found) (*ExitRecord, error) {
	if f.Alive {
		return nil, fmt.Errorf("clean up shim %s: it is running (pid %d)", f.Dir, f.ShimPid)
	}
	if f.Options.Runtime != "" && f.Options.ID != "" {
		rt := &ociclient.Runtime{Binary: f.Options.Runtime, Root: f.Options.RuntimeRoot, Timeout: f.Options.Timeout}
		if err := rt.Delete(ctx, f.Options.ID, true); err != nil && !isNotFound(err) {
			return f.Exit, fmt.Errorf("clean up shim %s: %w", f.Dir, err)
		}
	}
	if err := os.RemoveAll(f.Dir); err != nil {
		return f.Exit, fmt.Errorf("clean up shim %s: %w", f.Dir, err)
	}
	return f.Exit, nil
}
