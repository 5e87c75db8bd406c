package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Status values, as runtime-spec runtime.md names them, plus "paused".
const (
	Creating = "creating"
	Created  = "created"
	Running  = "running"
	Stopped  = "stopped"
	Paused   = "paused"
)

// Files inside a container's state directory.
const (
	stateFile = "state.json"
	viewFile  = "exec.view"
	fifoFile  = "exec.fifo"
	lockFile  = "lock"
)

// Container is what state.json holds, encoded as encoding/json encodes
// its fields, the spec without reflection (see encoding.go; a field added
// here must be added to the shadow structs there too).
type Container struct {
	ID             string            `json:"id"`
	Pid            int               `json:"pid"`
	PidStartTime   uint64            `json:"pid_start_time"`
	Bundle         string            `json:"bundle"`
	Rootfs         string            `json:"rootfs"`
	Created        time.Time         `json:"created"`
	Owner          string            `json:"owner"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	CgroupPaths    map[string]string `json:"cgroup_paths,omitempty"`
	NamespacePaths map[string]string `json:"namespace_paths,omitempty"`
	// Spec is the config the container was created with (hooks, seccomp,
	// process defaults for exec).
	Spec *specs.Spec `json:"spec"`
	// SeccompKey names the compiled filter of Spec.Linux.Seccomp in the
	// cache under --root/.seccomp (seccomp.CacheKey), so that exec finds
	// it without decoding and hashing the profile.
	SeccompKey string `json:"seccomp_key,omitempty"`
}

// ExecView is the part of a container's state that exec needs in the
// common case. Create writes it beside state.json in a flat binary form
// (exec.view, encoded by the container package without reflection; the
// spec's process and the rest never change after create: update only
// changes linux.resources);
// LoadExecView decodes it from state.json when exec.view is missing or
// unreadable (a container created by an older build). Decoding even this
// part of state.json with encoding/json costs a fresh process ~0.7 ms of
// first-use reflection.
type ExecView struct {
	ID           string
	Pid          int
	PidStartTime uint64
	CgroupPaths  map[string]string
	SeccompKey   string
	Process      *specs.Process
	// HasLinux reports whether the spec has a linux section; the fields
	// below are its parts.
	HasLinux    bool
	Namespaces  []specs.LinuxNamespace
	Personality bool // linux.personality is set (not null)
	Seccomp     bool // linux.seccomp is set
	// ListenerPath is linux.seccomp.listenerPath.
	ListenerPath string
}

// execViewJSON is the shape of state.json that LoadExecView decodes.
type execViewJSON struct {
	ID           string            `json:"id"`
	Pid          int               `json:"pid"`
	PidStartTime uint64            `json:"pid_start_time"`
	CgroupPaths  map[string]string `json:"cgroup_paths,omitempty"`
	SeccompKey   string            `json:"seccomp_key,omitempty"`
	Spec         struct {
		Process *specs.Process `json:"process"`
		Linux   *struct {
			Namespaces  []specs.LinuxNamespace `json:"namespaces"`
			Personality json.RawMessage        `json:"personality"`
			Seccomp     *struct {
				ListenerPath string `json:"listenerPath"`
			} `json:"seccomp"`
		} `json:"linux"`
	} `json:"spec"`
}

// ExecViewOf returns the exec view of c.
func ExecViewOf(c *Container) *ExecView {
	v := &ExecView{ID: c.ID, Pid: c.Pid, PidStartTime: c.PidStartTime, CgroupPaths: c.CgroupPaths, SeccompKey: c.SeccompKey}
	if c.Spec == nil {
		return v
	}
	v.Process = c.Spec.Process
	if l := c.Spec.Linux; l != nil {
		v.HasLinux = true
		v.Namespaces = l.Namespaces
		v.Personality = l.Personality != nil
		if l.Seccomp != nil {
			v.Seccomp = true
			v.ListenerPath = l.Seccomp.ListenerPath
		}
	}
	return v
}

// Container returns the view's container without its spec: enough for
// Status.
func (v *ExecView) Container() *Container {
	return &Container{ID: v.ID, Pid: v.Pid, PidStartTime: v.PidStartTime, CgroupPaths: v.CgroupPaths}
}

// LoadExecView reads the state of id as an ExecView, from state.json.
func (s *Store) LoadExecView(id string) (*ExecView, error) {
	data, err := s.read(id)
	if err != nil {
		return nil, err
	}
	var j execViewJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("state of %q is corrupt: %w", id, err)
	}
	v := &ExecView{ID: j.ID, Pid: j.Pid, PidStartTime: j.PidStartTime, CgroupPaths: j.CgroupPaths, SeccompKey: j.SeccompKey, Process: j.Spec.Process}
	if l := j.Spec.Linux; l != nil {
		v.HasLinux = true
		v.Namespaces = l.Namespaces
		v.Personality = len(l.Personality) > 0 && string(l.Personality) != "null"
		if l.Seccomp != nil {
			v.Seccomp = true
			v.ListenerPath = l.Seccomp.ListenerPath
		}
	}
	return v, nil
}

// StageView writes data, an encoded ExecView, as the exec view of id.
// Create writes it before it commits state.json; ReadView returns it
// only once state.json is there.
func (s *Store) StageView(id string, data []byte) error {
	if err := os.WriteFile(filepath.Join(s.Dir(id), viewFile), data, 0o600); err != nil {
		return fmt.Errorf("write exec view: %w", err)
	}
	return nil
}

// ReadView returns the encoded ExecView of id that create wrote, or an
// error that wraps os.ErrNotExist when there is none or when state.json
// is not there (yet, or any more): then LoadExecView reads state.json, or
// says that the container does not exist. Remove unlinks the view first.
func (s *Store) ReadView(id string) ([]byte, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(s.Dir(id), viewFile))
	if err != nil {
		return nil, err
	}
	if err := unix.Access(filepath.Join(s.Dir(id), stateFile), unix.F_OK); err != nil {
		return nil, fmt.Errorf("state of %q: %w", id, os.ErrNotExist)
	}
	return data, nil
}

// Store is the --root directory.
type Store struct {
	Root string
}

// idChars reports whether id matches ^[A-Za-z0-9][A-Za-z0-9_+\-.]*$
// (by hand: a regexp compiled at package init costs every gantry-oci
// process, the container's init included, ~40 us).
func idChars(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return len(id) > 0
}

// ValidateID refuses ids that could escape the state directory or confuse
// tools: empty, path separators, "." and "..", more than 1024 bytes.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("container id: empty: %w", errdefs.ErrInvalidArgument)
	}
	if len(id) > 1024 || !idChars(id) || id == "." || id == ".." || strings.Contains(id, "..") {
		return fmt.Errorf("container id %q: only letters, digits, '_', '+', '-' and '.' (not '..'), starting with a letter or digit: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Dir returns the state directory of id.
func (s *Store) Dir(id string) string { return filepath.Join(s.Root, id) }

// FifoPath is the exec fifo of id.
func (s *Store) FifoPath(id string) string { return filepath.Join(s.Dir(id), fifoFile) }

// Reserve creates the state directory of a new container with its exec
// fifo. It fails with ErrAlreadyExists when the id is in use.
func (s *Store) Reserve(id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if err := os.MkdirAll(s.Root, 0o711); err != nil {
		return fmt.Errorf("create state root %s: %w", s.Root, err)
	}
	if err := os.Mkdir(s.Dir(id), 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("container %q: %w", id, errdefs.ErrAlreadyExists)
		}
		return fmt.Errorf("create state dir: %w", err)
	}
	if err := unix.Mkfifo(s.FifoPath(id), 0o600); err != nil {
		os.RemoveAll(s.Dir(id))
		return fmt.Errorf("create exec fifo: %w", err)
	}
	return nil
}

// Lock takes the container's exclusive lock; the returned func releases it.
func (s *Store) Lock(id string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.Dir(id), lockFile), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("lock container %q: %w", id, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock container %q: %w", id, err)
	}
	return func() { f.Close() }, nil
}

// Save writes c atomically.
func (s *Store) Save(c *Container) error {
	// What json.Marshal(c) returns, without its copy of the result.
	data, err := c.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode state of %q: %w", c.ID, err)
	}
	if err := s.Stage(c.ID, data); err != nil {
		return err
	}
	return s.Commit(c.ID)
}

// Stage writes data, a Container encoded with json.Marshal, beside the
// state of id, where no command reads it; Commit then makes it the state.
// Save is both; create stages the state while the container's init
// starts, off its critical path, and commits it once the init is ready.
func (s *Store) Stage(id string, data []byte) error {
	if err := os.WriteFile(filepath.Join(s.Dir(id), stateFile+".tmp"), data, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// Commit makes the state staged by Stage the state of id (a rename: a
// reader sees the old state or the new one, never a part).
func (s *Store) Commit(id string) error {
	if err := os.Rename(filepath.Join(s.Dir(id), stateFile+".tmp"), filepath.Join(s.Dir(id), stateFile)); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// Load reads the state of id.
func (s *Store) Load(id string) (*Container, error) {
	data, err := s.read(id)
	if err != nil {
		return nil, err
	}
	// What json.Unmarshal(data, &c) does, without its two scans of data
	// before it calls the method.
	var c Container
	if err := c.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("state of %q is corrupt: %w", id, err)
	}
	return &c, nil
}

func (s *Store) read(id string) ([]byte, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(s.Dir(id), stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %q does not exist: %w", id, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("read state of %q: %w", id, err)
	}
	return data, nil
}

// Remove deletes the state directory of id.
func (s *Store) Remove(id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	dir := s.Dir(id)
	// The files a container's directory holds: removed by name, then the
	// directory, without listing it; anything else falls back to RemoveAll.
	for _, name := range []string{viewFile, stateFile, fifoFile, lockFile, stateFile + ".tmp"} {
		unix.Unlink(filepath.Join(dir, name))
	}
	if err := unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return os.RemoveAll(dir)
}

// List returns the ids that have a state.json, sorted.
func (s *Store) List() ([]string, error) {
	ents, err := os.ReadDir(s.Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read state root: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if !e.IsDir() || ValidateID(e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.Root, e.Name(), stateFile)); err == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Status derives the container's status: stopped when its init is gone or
// a zombie; created while the exec fifo exists; paused when frozen (the
// caller passes frozen); otherwise running.
func (s *Store) Status(c *Container, frozen bool) string {
	if !ProcessAlive(c.Pid, c.PidStartTime) {
		return Stopped
	}
	if _, err := os.Stat(s.FifoPath(c.ID)); err == nil {
		return Created
	}
	if frozen {
		return Paused
	}
	return Running
}

// ProcessAlive reports whether pid runs and is the process that started at
// startTime (clock ticks since boot, field 22 of /proc/PID/stat); zombies
// count as dead.
func ProcessAlive(pid int, startTime uint64) bool {
	if pid <= 0 {
		return false
	}
	st, state, err := StartTime(pid)
	if err != nil {
		return false
	}
	if state == 'Z' || state == 'X' {
		return false
	}
	return startTime == 0 || st == startTime
}

// StartTime returns the start time and state letter of pid from /proc.
func StartTime(pid int) (uint64, byte, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// comm may contain spaces and parentheses: fields start after the last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return st, f[0][0], nil
}
