package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/timestamppb"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	shimapi "github.com/gantry-project/gantry/api/shim/v1"
	"github.com/gantry-project/gantry/internal/bundle"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/events"
	"github.com/gantry-project/gantry/internal/image"
	"github.com/gantry-project/gantry/internal/metadata"
	"github.com/gantry-project/gantry/internal/services"
	"github.com/gantry-project/gantry/internal/snapshot"
	"github.com/gantry-project/gantry/internal/specgen"
	"github.com/gantry-project/gantry/internal/task"
	"github.com/gantry-project/gantry/internal/unpack"
)

// Labels gantryd keeps on a container record.
const (
	labelName  = "io.gantry.container.name"
	labelStdin = "io.gantry.container.stdin"
	// labelAutoRemove marks a container that is removed once it exits:
	// by its client ("true", `gantry run --rm`) or by gantryd itself
	// ("detached", `gantry run -d --rm`; autoremove.go). Its shim deletes
	// it with the runtime as soon as it exits, in parallel with the
	// removal. The client sets it, so the API defines it.
	labelAutoRemove = gantryv1.LabelAutoRemove
	// labelDeleting marks a record whose delete has begun: a gantryd
	// that dies during the delete finishes it at its next start.
	labelDeleting = "io.gantry.container.deleting"
)

// Container event topics.
const (
	topicContainerCreate = "/containers/create"
	topicContainerDelete = "/containers/delete"
)

// lastExitName is the file, in a container's directory under the root,
// that keeps the exit of a task whose shim is gone.
const lastExitName = "exit.json"

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// containers runs containers: records in metadata, a writable snapshot
// mounted as the bundle's rootfs, tasks through task.Manager.
type containers struct {
	db       *metadata.DB
	sn       snapshot.Snapshotter
	images   *image.Service
	tasks    *task.Manager
	bus      *events.Bus
	logger   *slog.Logger
	bundles  string // <state>/bundles
	dataRoot string // <root>/containers
	runtime  string // the default runtime binary
	missing  error  // set when the shim or default runtime is missing
	// initConfig is the config's init key: gantry-init's path or name,
	// empty for next to gantryd; see findInit.
	initConfig string

	cgroupParent string // containers get <cgroupParent>/<ns>-<id>
	rmVolatile   bool   // mount the rw layer of --rm containers volatile
	shims        string // <state>/shims
	runtimeRoot  string // <state>/runtime

	mu sync.Mutex // serializes create and delete (name uniqueness)

	autoRm *autoRemover // removals of exited containers by gantryd
}

var _ services.Containers = (*containers)(nil)

// lastExit is the exit of a container whose task is gone, kept in its
// exit.json.
type lastExit struct {
	ExitStatus int       `json:"exitStatus"`
	Unknown    bool      `json:"unknown,omitempty"`
	ExitedAt   time.Time `json:"exitedAt,omitzero"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
}

// lastExitOf is the exit of a stopped task, to keep.
func lastExitOf(st task.State) lastExit {
	return lastExit{ExitStatus: st.ExitStatus, Unknown: st.ExitUnknown, ExitedAt: st.ExitedAt, OOMKilled: st.OOMKilled}
}

// state is the kept exit as the stopped state of container id's task.
func (e lastExit) state(id string) task.State {
	return task.State{ID: id, Status: task.StatusStopped, ExitStatus: e.ExitStatus, ExitUnknown: e.Unknown, ExitedAt: e.ExitedAt, OOMKilled: e.OOMKilled}
}

// setExit sets the exit fields of out from st, a stopped task's state.
func setExit(out *gantryv1.Container, st task.State) {
	out.ExitStatus, out.ExitUnknown, out.OomKilled = int32(st.ExitStatus), st.ExitUnknown, st.OOMKilled
	if !st.ExitedAt.IsZero() {
		out.ExitedAt = timestamppb.New(st.ExitedAt)
	}
}

func (c *containers) dir(ns, id string) string { return filepath.Join(c.dataRoot, ns, id) }

// cgroupPath is the container's linux.cgroupsPath.
func (c *containers) cgroupPath(ns, id string) string {
	parent := c.cgroupParent
	if parent == "" {
		parent = "/gantry"
	}
	return parent + "/" + ns + "-" + id
}
func (c *containers) logPath(ns, id string) string {
	return filepath.Join(c.dir(ns, id), "container.log")
}

func (c *containers) publish(ns, topic, id string, attrs map[string]string) {
	if _, err := c.bus.Publish(ns, topic, id, attrs); err != nil {
		c.logger.Warn("publish event", "topic", topic, "error", err)
	}
}

func (c *containers) writeLastExit(ns, id string, e lastExit) {
	data, _ := json.Marshal(e)
	if err := os.MkdirAll(c.dir(ns, id), 0o700); err == nil {
		if err := os.WriteFile(filepath.Join(c.dir(ns, id), lastExitName), data, 0o600); err != nil {
			c.logger.Warn("record exit", "id", id, "error", err)
		}
	}
}

func (c *containers) readLastExit(ns, id string) (lastExit, bool) {
	data, err := os.ReadFile(filepath.Join(c.dir(ns, id), lastExitName))
	if err != nil {
		return lastExit{}, false
	}
	var e lastExit
	if json.Unmarshal(data, &e) != nil {
		return lastExit{}, false
	}
	return e, true
}

// restore reconnects the tasks of a previous gantryd (the exits of dead
// shims reach taskExited), finishes or undoes what a crash interrupted,
// mounts the bundles of every container again if needed, and then lets
// the removals of exited containers that gantryd removes itself run:
// those whose exit the tasks reported, and those that exited with no
// task left (a removal a crash interrupted).
func (c *containers) restore(ctx context.Context) error {
	if err := c.tasks.Restore(ctx); err != nil {
		return fmt.Errorf("restore tasks: %w", err)
	}
	c.reconcile(ctx)
	nss, err := c.db.ListNamespaces(ctx)
	if err != nil {
		return err
	}
	for _, ns := range nss {
		recs, err := c.db.ListContainers(ctx, ns)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if removedByDaemon(r) {
				if _, err := c.tasks.Get(ns, r.ID); err != nil {
					if _, exited := c.readLastExit(ns, r.ID); exited {
						c.autoRemove(ns, r.ID)
					}
				}
			}
			if r.SnapshotKey == "" || incomplete(r) {
				continue
			}
			mounts, err := c.sn.Mounts(ctx, r.SnapshotKey)
			if err == nil {
				err = bundle.Ensure(bundle.Dir(c.bundles, ns, r.ID), mounts)
			}
			if err == nil {
				_, serr := os.Stat(filepath.Join(bundle.Dir(c.bundles, ns, r.ID), bundle.ConfigName))
				if serr != nil {
					err = bundle.WriteSpecJSON(bundle.Dir(c.bundles, ns, r.ID), r.Spec)
				}
			}
			if err != nil {
				c.logger.Warn("restore bundle", "namespace", ns, "id", r.ID, "error", err)
			}
		}
	}
	c.autoRemoveReady()
	return nil
}

// resolve finds a container by id, name or unique id prefix.
func (c *containers) resolve(ctx context.Context, ns, ref string) (metadata.Container, error) {
	if r, err := c.db.GetContainer(ctx, ns, ref); err == nil {
		return r, nil
	} else if !errdefs.IsNotFound(err) {
		return metadata.Container{}, err
	}
	all, err := c.db.ListContainers(ctx, ns)
	if err != nil {
		return metadata.Container{}, err
	}
	var match []metadata.Container
	for _, r := range all {
		if r.Labels[labelName] == ref {
			return r, nil
		}
		if strings.HasPrefix(r.ID, ref) {
			match = append(match, r)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return metadata.Container{}, fmt.Errorf("no such container: %s: %w", ref, errdefs.ErrNotFound)
	default:
		return metadata.Container{}, fmt.Errorf("container %q: ambiguous id prefix (%d matches): %w", ref, len(match), errdefs.ErrInvalidArgument)
	}
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// findRuntime resolves the runtime binary: a path must exist, a bare name
// is looked up in PATH.
func (c *containers) findRuntime(name string) (string, error) {
	if name == "" {
		return c.runtime, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("runtime %q: %v: %w", name, err, errdefs.ErrInvalidArgument)
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return p, nil
}

// findInit returns the absolute path of gantry-init for --init, looked up
// at each create so that installing it needs no restart of gantryd.
func (c *containers) findInit() (string, error) {
	p, err := findBinary(c.initConfig, initName)
	if err != nil {
		return "", fmt.Errorf("--init: %w (build it with `make build`, or set init = \"/path/to/gantry-init\" in gantryd's config): %w", err, errdefs.ErrFailedPrecondition)
	}
	return p, nil
}

// CreateContainer creates the container, then with req.task its task
// (`gantry run` in one call): a task that cannot be created or started
// takes the container with it, so the caller sees one failed call and
// nothing left. A kill -9 of gantryd between the two leaves a complete
// container without a task ("created"), as between two calls.
func (c *containers) CreateContainer(ctx context.Context, ns string, req *gantryv1.CreateContainerRequest) (*gantryv1.Container, *gantryv1.TaskState, error) {
	rec, err := c.createContainer(ctx, ns, req)
	if err != nil {
		return nil, nil, err
	}
	// Just created: no task, exit record or failure yet.
	ctr := c.recordToAPI(ns, rec)
	if req.GetTask() == nil {
		return ctr, nil, nil
	}
	// Its bundle is mounted and its directory made: the task starts from
	// the record in hand.
	st, err := c.createTask(ctx, ns, rec, req.GetTask().GetStart(), req.GetTask().GetHoldOutput())
	if err != nil {
		if _, derr := c.DeleteContainer(context.WithoutCancel(ctx), ns, &gantryv1.DeleteContainerRequest{Ref: ctr.GetId(), Force: true}); derr != nil {
			c.logger.Warn("remove container whose task failed", "namespace", ns, "id", ctr.GetId(), "error", derr)
		}
		return nil, nil, err
	}
	ctr.Status, ctr.Pid = st.GetStatus(), apiPid(st.GetStatus(), int(st.GetPid()))
	if st.GetStatus() == task.StatusStopped {
		ctr.ExitStatus, ctr.ExitUnknown, ctr.ExitedAt, ctr.OomKilled = st.GetExitStatus(), st.GetExitUnknown(), st.GetExitedAt(), st.GetOomKilled()
	}
	return ctr, st, nil
}

func (c *containers) createContainer(ctx context.Context, ns string, req *gantryv1.CreateContainerRequest) (metadata.Container, error) {
	o := req.GetOptions()
	if o == nil {
		o = &gantryv1.ContainerOptions{}
	}
	if c.missing != nil && (req.GetRuntime() == "" || strings.HasPrefix(c.missing.Error(), "shim")) {
		return metadata.Container{}, c.missing
	}
	var initBin string
	if o.GetInit() {
		var err error
		if initBin, err = c.findInit(); err != nil {
			return metadata.Container{}, err
		}
	}
	runtime, err := c.findRuntime(req.GetRuntime())
	if err != nil {
		return metadata.Container{}, err
	}
	id := req.GetId()
	if id == "" {
		id = newID()
	} else if !validName.MatchString(id) {
		return metadata.Container{}, fmt.Errorf("container id %q: want letters, digits, '_', '.', '-': %w", id, errdefs.ErrInvalidArgument)
	}
	name := req.GetName()
	if name == "" {
		name = "gantry-" + id[:12]
	} else if !validName.MatchString(name) {
		return metadata.Container{}, fmt.Errorf("container name %q: want [a-zA-Z0-9][a-zA-Z0-9_.-]*: %w", name, errdefs.ErrInvalidArgument)
	}
	mounts, err := specMounts(o)
	if err != nil {
		return metadata.Container{}, err
	}
	details, err := c.images.Inspect(ctx, ns, req.GetImage())
	if err != nil {
		if errdefs.IsNotFound(err) {
			return metadata.Container{}, fmt.Errorf("image %q: not found (pull or import it first): %w", req.GetImage(), errdefs.ErrNotFound)
		}
		return metadata.Container{}, err
	}
	var parent string
	if ids := unpack.ChainIDs(details.Config.RootFS.DiffIDs); len(ids) > 0 {
		parent = string(ids[len(ids)-1])
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	all, err := c.db.ListContainers(ctx, ns)
	if err != nil {
		return metadata.Container{}, err
	}
	for _, r := range all {
		if r.ID == id {
			return metadata.Container{}, fmt.Errorf("container id %q: already in use: %w", id, errdefs.ErrAlreadyExists)
		}
		if r.Labels[labelName] == name {
			return metadata.Container{}, fmt.Errorf("container name %q: already in use by container %s: %w", name, r.ID[:min(12, len(r.ID))], errdefs.ErrAlreadyExists)
		}
	}
	labels := map[string]string{}
	for k, v := range req.GetLabels() {
		labels[k] = v
	}
	labels[labelName] = name
	if o.GetStdin() {
		labels[labelStdin] = "true"
	}
	rec := metadata.Container{
		ID: id, Image: details.Image.Name, ImageTarget: details.Image.Target.Digest, SnapshotKey: "container/" + ns + "/" + id,
		Runtime: runtime, Labels: labels,
	}
	// The record comes first: it keeps the snapshot from garbage collection.
	if err := c.db.PutContainer(ctx, ns, rec); err != nil {
		return metadata.Container{}, err
	}
	task.Fault(task.FaultAfterContainerRecord)
	dir := bundle.Dir(c.bundles, ns, id)
	undo := func() {
		bundle.Remove(dir)
		c.sn.Remove(context.WithoutCancel(ctx), rec.SnapshotKey)
		os.RemoveAll(c.dir(ns, id))
		c.db.DeleteContainer(context.WithoutCancel(ctx), ns, id)
	}
	smounts, err := c.sn.Prepare(ctx, rec.SnapshotKey, parent)
	if err != nil {
		undo()
		return metadata.Container{}, fmt.Errorf("prepare snapshot of %s: %w", id, err)
	}
	task.Fault(task.FaultAfterSnapshotPrepare)
	create := bundle.Create
	if c.rmVolatile && deletedOnExit(labels) {
		// Its writable layer is thrown away when it exits: not synced.
		create = bundle.CreateVolatile
	}
	if err := create(dir, smounts); err != nil {
		undo()
		return metadata.Container{}, err
	}
	sopts := specgen.Options{
		Env: o.GetEnv(), User: o.GetUser(), Cwd: o.GetCwd(), Tty: o.GetTty(), Hostname: o.GetHostname(),
		ReadOnly: o.GetReadOnly(), Privileged: o.GetPrivileged(), CapAdd: o.GetCapAdd(), CapDrop: o.GetCapDrop(),
		Memory: o.GetMemory(), CPUs: o.GetCpus(), PidsLimit: o.GetPidsLimit(), NetworkMode: o.GetNetwork(),
		Mounts: mounts, Init: initBin,
	}
	hostNetwork := o.GetNetwork() == "host"
	if sopts.Hostname == "" {
		sopts.Hostname = id[:min(12, len(id))]
		if hostNetwork {
			// docker's: the host's name with the host's network.
			if h, err := os.Hostname(); err == nil && h != "" {
				sopts.Hostname = h
			}
		}
	}
	if sopts.EtcFiles, err = writeEtcFiles(c.dir(ns, id), sopts.Hostname, hostNetwork); err != nil {
		undo()
		return metadata.Container{}, err
	}
	if o.GetEntrypointSet() {
		sopts.Entrypoint = append([]string{}, o.GetEntrypoint()...)
	}
	if o.GetArgsSet() {
		sopts.Args = append([]string{}, o.GetArgs()...)
	}
	spec, err := specgen.Generate(details.Config, specgen.DirLookup(bundle.Rootfs(dir)), sopts)
	if err != nil {
		undo()
		return metadata.Container{}, err
	}
	if len(spec.Process.Args) == 0 {
		undo()
		return metadata.Container{}, fmt.Errorf("image %s has no command; give one: %w", details.Image.Name, errdefs.ErrInvalidArgument)
	}
	spec.Linux.CgroupsPath = c.cgroupPath(ns, id)
	if err := bundle.WriteSpec(dir, spec); err != nil {
		undo()
		return metadata.Container{}, err
	}
	task.Fault(task.FaultAfterBundleWritten)
	if rec.Spec, err = json.Marshal(spec); err != nil {
		undo()
		return metadata.Container{}, fmt.Errorf("encode spec of %s: %w", id, err)
	}
	if err := c.db.PutContainer(ctx, ns, rec); err != nil {
		undo()
		return metadata.Container{}, err
	}
	c.publish(ns, topicContainerCreate, id, map[string]string{"name": name, "image": rec.Image})
	return rec, nil
}

// specMounts turns -v and --tmpfs into runtime-spec mounts, checking the
// host paths.
func specMounts(o *gantryv1.ContainerOptions) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range o.GetMounts() {
		typ := m.GetType()
		if typ == "" {
			typ = "bind"
		}
		if !filepath.IsAbs(m.GetDestination()) {
			return nil, fmt.Errorf("mount destination %q: not an absolute path: %w", m.GetDestination(), errdefs.ErrInvalidArgument)
		}
		if typ == "bind" {
			if !filepath.IsAbs(m.GetSource()) {
				return nil, fmt.Errorf("mount source %q: not an absolute path: %w", m.GetSource(), errdefs.ErrInvalidArgument)
			}
			if _, err := os.Stat(m.GetSource()); err != nil {
				return nil, fmt.Errorf("mount source %q: does not exist on the host: %w", m.GetSource(), errdefs.ErrInvalidArgument)
			}
		}
		opts := m.GetOptions()
		if typ == "bind" && len(opts) == 0 {
			opts = []string{"rbind", "rw"}
		}
		out = append(out, specs.Mount{Type: typ, Source: m.GetSource(), Destination: m.GetDestination(), Options: opts})
	}
	for _, t := range o.GetTmpfs() {
		dst, opt, _ := strings.Cut(t, ":")
		if !filepath.IsAbs(dst) {
			return nil, fmt.Errorf("tmpfs %q: not an absolute path: %w", dst, errdefs.ErrInvalidArgument)
		}
		opts := []string{"mode=1777"} // specgen adds docker's noexec,nosuid,nodev
		if opt != "" {
			opts = append(opts, strings.Split(opt, ",")...)
		}
		out = append(out, specs.Mount{Type: "tmpfs", Source: "tmpfs", Destination: dst, Options: opts})
	}
	return out, nil
}

func (c *containers) toAPI(ctx context.Context, ns string, r metadata.Container) *gantryv1.Container {
	out := c.recordToAPI(ns, r)
	c.fillStatus(ctx, ns, r, out)
	return out
}

// recordToAPI is the container as its record says, status "created".
func (c *containers) recordToAPI(ns string, r metadata.Container) *gantryv1.Container {
	out := &gantryv1.Container{
		Id: r.ID, Name: r.Labels[labelName], Image: r.Image, SnapshotKey: r.SnapshotKey, Runtime: r.Runtime,
		Spec: r.Spec, Labels: r.Labels, CreatedAt: timestamppb.New(r.CreatedAt),
		LogPath: c.logPath(ns, r.ID), Bundle: bundle.Dir(c.bundles, ns, r.ID), Stdin: r.Labels[labelStdin] == "true",
		Status: "created",
	}
	var sp specs.Spec
	if json.Unmarshal(r.Spec, &sp) == nil && sp.Process != nil {
		out.Tty = sp.Process.Terminal
	}
	return out
}

// apiPid is the pid a Container shows for a task in status: its
// process's while it runs or is paused, else 0, as docker's State.Pid.
// The init of a created task is the runtime's, waiting for the start; that
// of a stopped one is gone, and its pid may already be another process's.
func apiPid(status string, pid int) int32 {
	if status == task.StatusRunning || status == task.StatusPaused {
		return int32(pid)
	}
	return 0
}

// fillStatus sets the status, pid and exit of out from the task (asking its
// shim) or from the last exit recorded.
func (c *containers) fillStatus(ctx context.Context, ns string, r metadata.Container, out *gantryv1.Container) {
	if t, err := c.tasks.Get(ns, r.ID); err == nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := t.State(sctx, "")
		cancel()
		if err == nil {
			out.Status, out.Pid = st.Status, apiPid(st.Status, st.Pid)
			if _, failed := c.failed(ns, r.ID); failed && st.Status != task.StatusRunning && st.Status != task.StatusPaused {
				out.Status = StatusFailed
			}
			if st.Status == task.StatusStopped {
				setExit(out, st)
			}
			return
		}
		out.Status = "unknown"
		return
	}
	if e, ok := c.readLastExit(ns, r.ID); ok {
		out.Status = "exited"
		setExit(out, e.state(r.ID))
	}
	if _, failed := c.failed(ns, r.ID); failed {
		out.Status = StatusFailed
	}
}

func (c *containers) GetContainer(ctx context.Context, ns, ref string) (*gantryv1.Container, error) {
	r, err := c.resolve(ctx, ns, ref)
	if err != nil {
		return nil, err
	}
	return c.toAPI(ctx, ns, r), nil
}

func (c *containers) ListContainers(ctx context.Context, ns string) ([]*gantryv1.Container, error) {
	recs, err := c.db.ListContainers(ctx, ns)
	if err != nil {
		return nil, err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].CreatedAt.After(recs[j].CreatedAt) })
	out := make([]*gantryv1.Container, 0, len(recs))
	for _, r := range recs {
		out = append(out, c.toAPI(ctx, ns, r))
	}
	return out, nil
}

func (c *containers) DeleteContainer(ctx context.Context, ns string, req *gantryv1.DeleteContainerRequest) (*gantryv1.Container, error) {
	r, err := c.resolve(ctx, ns, req.GetRef())
	if err != nil {
		return nil, err
	}
	return c.deleteContainer(ctx, ns, r.ID, req)
}

// deleteContainer deletes container id as req says (its ref is not looked
// at).
func (c *containers) deleteContainer(ctx context.Context, ns, id string, req *gantryv1.DeleteContainerRequest) (*gantryv1.Container, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Read under the lock: another delete (a client's, or gantryd's own
	// autoremove) may have removed it meanwhile.
	r, err := c.db.GetContainer(ctx, ns, id)
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("no such container: %s: %w", req.GetRef(), errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	_, terr := c.tasks.Get(ns, r.ID)
	var out *gantryv1.Container
	if terr == nil && req.GetForce() {
		// Whatever the task's status, it goes: its final state is the
		// delete's answer below, not one more call to its shim.
		out = c.recordToAPI(ns, r)
	} else {
		out = c.toAPI(ctx, ns, r)
	}
	if terr == nil && (out.Status == task.StatusRunning || out.Status == task.StatusPaused || out.Status == task.StatusCreated) && !req.GetForce() {
		return nil, fmt.Errorf("container %s is %s: stop it first or use force: %w", out.Name, out.Status, errdefs.ErrFailedPrecondition)
	}
	if r.Labels[labelDeleting] == "" && !req.GetKeepSnapshot() {
		marked := r
		marked.Labels = maps.Clone(r.Labels)
		if marked.Labels == nil {
			marked.Labels = map[string]string{}
		}
		marked.Labels[labelDeleting] = "true"
		if err := c.db.PutContainer(ctx, ns, marked); err != nil {
			return nil, fmt.Errorf("delete container %s: %w", out.Name, err)
		}
	}
	if terr == nil {
		st, err := c.tasks.Delete(ctx, ns, r.ID, "", true)
		if err != nil && !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("delete task of %s: %w", out.Name, err)
		}
		if err == nil && req.GetForce() {
			out.Status, out.Pid = st.Status, apiPid(st.Status, st.Pid)
			setExit(out, st)
		}
	}
	if err := bundle.Remove(bundle.Dir(c.bundles, ns, r.ID)); err != nil {
		return nil, err
	}
	task.Fault(task.FaultAfterBundleRemove)
	if !req.GetKeepSnapshot() && r.SnapshotKey != "" {
		if err := c.sn.Remove(ctx, r.SnapshotKey); err != nil && !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("remove snapshot of %s: %w", out.Name, err)
		}
	}
	task.Fault(task.FaultAfterSnapshotRemove)
	if err := os.RemoveAll(c.dir(ns, r.ID)); err != nil {
		return nil, fmt.Errorf("remove container directory: %w", err)
	}
	if err := c.db.DeleteContainer(ctx, ns, r.ID); err != nil {
		return nil, err
	}
	task.Fault(task.FaultAfterMetadataDelete)
	c.publish(ns, topicContainerDelete, r.ID, map[string]string{"name": out.Name})
	return out, nil
}

func stateToAPI(st task.State) *gantryv1.TaskState {
	out := &gantryv1.TaskState{Id: st.ID, ExecId: st.ExecID, Pid: int32(st.Pid), Status: st.Status,
		ExitStatus: int32(st.ExitStatus), ExitUnknown: st.ExitUnknown, Terminal: st.Terminal, OomKilled: st.OOMKilled}
	if !st.ExitedAt.IsZero() {
		out.ExitedAt = timestamppb.New(st.ExitedAt)
	}
	return out
}

func (c *containers) task(ctx context.Context, ns, ref string) (metadata.Container, *task.Task, error) {
	r, err := c.resolve(ctx, ns, ref)
	if err != nil {
		return r, nil, err
	}
	t, err := c.tasks.Get(ns, r.ID)
	if err != nil {
		return r, nil, fmt.Errorf("container %s is not running: %w", r.Labels[labelName], errdefs.ErrFailedPrecondition)
	}
	return r, t, nil
}

// CreateTask launches the shim; with req.start the shim creates and
// starts the container in one runtime call. A stopped task left from an
// earlier run is deleted first (as `docker start` of an exited container).
func (c *containers) CreateTask(ctx context.Context, ns string, req *gantryv1.CreateTaskRequest) (*gantryv1.TaskState, error) {
	r, err := c.resolve(ctx, ns, req.GetRef())
	if err != nil {
		return nil, err
	}
	if t, err := c.tasks.Get(ns, r.ID); err == nil {
		st, err := t.State(ctx, "")
		if err != nil {
			return nil, err
		}
		if st.Status == task.StatusCreated {
			// Created by a call whose answer was lost (gantryd died
			// after the shim started): start goes on from here, holding
			// the output as asked (the client attaches next).
			if req.GetStart() {
				return c.startTask(ctx, ns, r.ID, task.StartOptions{HoldOutput: req.GetHoldOutput()})
			}
			return stateToAPI(st), nil
		}
		if st.Status != task.StatusStopped {
			return nil, fmt.Errorf("container %s is already %s: %w", r.Labels[labelName], st.Status, errdefs.ErrFailedPrecondition)
		}
		if _, err := c.tasks.Delete(ctx, ns, r.ID, "", true); err != nil && !errdefs.IsNotFound(err) {
			return nil, err
		}
	}
	mounts, err := c.sn.Mounts(ctx, r.SnapshotKey)
	if err != nil {
		return nil, fmt.Errorf("snapshot of %s: %w", r.ID, err)
	}
	if err := bundle.Ensure(bundle.Dir(c.bundles, ns, r.ID), mounts); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.dir(ns, r.ID), 0o700); err != nil {
		return nil, fmt.Errorf("create container directory: %w", err)
	}
	os.Remove(filepath.Join(c.dir(ns, r.ID), lastExitName))
	os.Remove(filepath.Join(c.dir(ns, r.ID), failedName))
	return c.createTask(ctx, ns, r, req.GetStart(), req.GetHoldOutput())
}

// createTask creates (and with start, starts) the task of the container r,
// whose bundle is mounted and whose directory exists.
func (c *containers) createTask(ctx context.Context, ns string, r metadata.Container, start, holdOutput bool) (*gantryv1.TaskState, error) {
	if c.missing != nil && strings.HasPrefix(c.missing.Error(), "shim") {
		return nil, c.missing
	}
	t, err := c.tasks.Create(ctx, ns, r.ID, task.CreateOptions{
		Bundle: bundle.Dir(c.bundles, ns, r.ID), Runtime: r.Runtime, LogPath: c.logPath(ns, r.ID), Stdin: r.Labels[labelStdin] == "true",
		DeleteOnExit: deletedOnExit(r.Labels),
		Start:        start, HoldOutput: holdOutput,
	})
	if err != nil {
		if hung(err) {
			c.markFailed(ns, r.ID, err)
		}
		return nil, err
	}
	if st, ok := t.Started(); ok {
		return stateToAPI(st), nil
	}
	st, err := t.State(ctx, "")
	if err != nil {
		return nil, err
	}
	return stateToAPI(st), nil
}

func (c *containers) StartTask(ctx context.Context, ns, ref string) (*gantryv1.TaskState, error) {
	return c.startTask(ctx, ns, ref, task.StartOptions{})
}

func (c *containers) startTask(ctx context.Context, ns, ref string, o task.StartOptions) (*gantryv1.TaskState, error) {
	r, t, err := c.task(ctx, ns, ref)
	if err != nil {
		return nil, err
	}
	st, err := t.StartWith(ctx, o)
	if err != nil {
		if hung(err) {
			c.failTask(ctx, ns, r.ID, err)
			return nil, fmt.Errorf("container %s marked failed: %w", r.Labels[labelName], err)
		}
		return nil, err
	}
	return stateToAPI(st), nil
}

func (c *containers) TaskState(ctx context.Context, ns, ref, execID string) (*gantryv1.TaskState, error) {
	_, t, err := c.task(ctx, ns, ref)
	if err != nil {
		return nil, err
	}
	st, err := t.State(ctx, execID)
	if err != nil {
		return nil, err
	}
	return stateToAPI(st), nil
}

func (c *containers) KillTask(ctx context.Context, ns string, req *gantryv1.KillTaskRequest) error {
	_, t, err := c.task(ctx, ns, req.GetRef())
	if err != nil {
		return err
	}
	sig := syscall.Signal(req.GetSignal())
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	return t.Kill(ctx, req.GetExecId(), sig, req.GetAll())
}

func (c *containers) WaitTask(ctx context.Context, ns, ref, execID string) (*gantryv1.TaskState, error) {
	r, t, err := c.task(ctx, ns, ref)
	if err != nil {
		if errors.Is(err, errdefs.ErrFailedPrecondition) && execID == "" {
			// No task: report the last exit, if any.
			if e, ok := c.readLastExit(ns, r.ID); ok {
				return stateToAPI(e.state(r.ID)), nil
			}
		}
		return nil, err
	}
	st, err := t.Wait(ctx, execID)
	if err != nil {
		return nil, err
	}
	return stateToAPI(st), nil
}

func (c *containers) DeleteTask(ctx context.Context, ns string, req *gantryv1.DeleteTaskRequest) (*gantryv1.TaskState, error) {
	r, err := c.resolve(ctx, ns, req.GetRef())
	if err != nil {
		return nil, err
	}
	st, err := c.tasks.Delete(ctx, ns, r.ID, req.GetExecId(), req.GetForce())
	if err != nil {
		return nil, err
	}
	if req.GetExecId() == "" {
		c.writeLastExit(ns, r.ID, lastExitOf(st))
	}
	return stateToAPI(st), nil
}

// ExecTask builds the exec's process from the container's: its user,
// capabilities, rlimits and apparmor/seccomp come along, the arguments,
// environment, user and cwd are the request's.
func (c *containers) ExecTask(ctx context.Context, ns string, req *gantryv1.ExecTaskRequest) (*gantryv1.TaskState, error) {
	r, t, err := c.task(ctx, ns, req.GetRef())
	if err != nil {
		return nil, err
	}
	st, err := t.State(ctx, "")
	if err != nil {
		return nil, err
	}
	if st.Status != task.StatusRunning {
		return nil, fmt.Errorf("container %s is not running (it is %s): %w", r.Labels[labelName], st.Status, errdefs.ErrFailedPrecondition)
	}
	var sp specs.Spec
	if err := json.Unmarshal(r.Spec, &sp); err != nil || sp.Process == nil {
		return nil, fmt.Errorf("spec of %s: unreadable: %w", r.ID, errdefs.ErrFailedPrecondition)
	}
	p := *sp.Process
	p.Args = req.GetArgs()
	p.Terminal = req.GetTty()
	p.ConsoleSize = nil
	env := append([]string{}, p.Env...)
	for _, e := range req.GetEnv() {
		k, _, _ := strings.Cut(e, "=")
		env = slicesDeleteKey(env, k)
		if strings.Contains(e, "=") {
			env = append(env, e)
		}
	}
	p.Env = env
	if req.GetCwd() != "" {
		if !filepath.IsAbs(req.GetCwd()) {
			return nil, fmt.Errorf("cwd %q: not absolute: %w", req.GetCwd(), errdefs.ErrInvalidArgument)
		}
		p.Cwd = req.GetCwd()
	}
	if req.GetUser() != "" {
		u, err := specgen.ResolveUser(req.GetUser(), specgen.DirLookup(bundle.Rootfs(bundle.Dir(c.bundles, ns, r.ID))))
		if err != nil {
			return nil, err // it names the user
		}
		p.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGids}
	}
	data, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode exec process: %w", err)
	}
	est, err := t.Exec(ctx, task.ExecOptions{ExecID: req.GetExecId(), Process: data, Stdin: req.GetStdin()})
	if err != nil {
		return nil, err
	}
	return stateToAPI(est), nil
}

func slicesDeleteKey(env []string, k string) []string {
	out := env[:0]
	for _, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek != k {
			out = append(out, e)
		}
	}
	return out
}

func (c *containers) PauseTask(ctx context.Context, ns, ref string) error {
	_, t, err := c.task(ctx, ns, ref)
	if err != nil {
		return err
	}
	return t.Pause(ctx)
}

func (c *containers) ResumeTask(ctx context.Context, ns, ref string) error {
	_, t, err := c.task(ctx, ns, ref)
	if err != nil {
		return err
	}
	return t.Resume(ctx)
}

func (c *containers) TaskPids(ctx context.Context, ns, ref string) ([]int32, error) {
	_, t, err := c.task(ctx, ns, ref)
	if err != nil {
		return nil, err
	}
	pids, err := t.Pids(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]int32, len(pids))
	for i, p := range pids {
		out[i] = int32(p)
	}
	return out, nil
}

func (c *containers) TaskStats(ctx context.Context, ns, ref string) ([]byte, error) {
	_, t, err := c.task(ctx, ns, ref)
	if err != nil {
		return nil, err
	}
	return t.Stats(ctx)
}

func (c *containers) ResizeTaskPty(ctx context.Context, ns string, req *gantryv1.ResizePtyTaskRequest) error {
	_, t, err := c.task(ctx, ns, req.GetRef())
	if err != nil {
		return err
	}
	return t.ResizePty(ctx, req.GetExecId(), uint16(req.GetWidth()), uint16(req.GetHeight()))
}

func (c *containers) CloseTaskStdin(ctx context.Context, ns, ref, execID string) error {
	_, t, err := c.task(ctx, ns, ref)
	if err != nil {
		return err
	}
	return t.CloseStdin(ctx, execID)
}

func (c *containers) AttachTask(ctx context.Context, ns, ref, execID string) (io.WriteCloser, error) {
	_, t, err := c.task(ctx, ns, ref)
	if err != nil {
		return nil, err
	}
	return t.Attach(ctx, execID)
}

// logBatch bounds the entries of one LogsResponse.
const logBatch = 64

func (c *containers) TaskLogs(ctx context.Context, ns string, req *gantryv1.LogsRequest, send func(*gantryv1.LogsResponse) error) error {
	r, err := c.resolve(ctx, ns, req.GetRef())
	if err != nil {
		return err
	}
	if req.GetLive() {
		err := c.liveOutput(ctx, ns, r.ID, req.GetExecId(), send)
		if !errors.Is(err, errdefs.ErrNotImplemented) {
			return err
		}
		// A shim older than AttachOutput: its output is in the log.
		req = &gantryv1.LogsRequest{Ref: req.GetRef(), Follow: true, UntilExecId: req.GetExecId()}
	}
	// done reports whether the followed process has exited (its output is
	// in the log by then: the shim drains it before reporting the exit).
	done := func() bool {
		t, err := c.tasks.Get(ns, r.ID)
		if err != nil {
			return true
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := t.State(sctx, req.GetUntilExecId())
		if errdefs.IsNotFound(err) && req.GetUntilExecId() != "" {
			// Not started yet (or already deleted): the task decides.
			st, err = t.State(sctx, "")
		}
		return err != nil || st.Status == task.StatusStopped
	}
	var batch []*gantryv1.LogEntry
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := send(&gantryv1.LogsResponse{Entries: batch})
		batch = nil
		return err
	}
	o := task.LogReadOptions{
		Tail: req.GetTail(), Follow: req.GetFollow(), Done: func() bool {
			if err := flush(); err != nil {
				return true
			}
			return done()
		},
		Ready: func() error { return send(&gantryv1.LogsResponse{Ready: true}) },
	}
	err = task.ReadLog(ctx, c.logPath(ns, r.ID), o, func(e task.LogEntry) error {
		batch = append(batch, &gantryv1.LogEntry{Stream: e.Stream, Data: []byte(e.Log), Time: timestamppb.New(e.Time)})
		if len(batch) >= logBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// liveOutput streams the live output of a task or exec (LogsRequest.live):
// ready once attached, then one entry a chunk until the output ends.
func (c *containers) liveOutput(ctx context.Context, ns, id, execID string, send func(*gantryv1.LogsResponse) error) error {
	t, err := c.tasks.Get(ns, id)
	if err != nil {
		return err
	}
	out, err := t.AttachOutput(ctx, execID)
	if err != nil {
		return err
	}
	defer out.Close()
	stop := context.AfterFunc(ctx, func() { out.Close() })
	defer stop()
	if err := send(&gantryv1.LogsResponse{Ready: true}); err != nil {
		return err
	}
	for {
		stream, data, err := out.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("live output of %s: %w", id, err)
		}
		name := "stdout"
		if stream == shimapi.OutputStderr {
			name = "stderr"
		}
		if err := send(&gantryv1.LogsResponse{Entries: []*gantryv1.LogEntry{{Stream: name, Data: data, Time: timestamppb.Now()}}}); err != nil {
			return err
		}
	}
}
