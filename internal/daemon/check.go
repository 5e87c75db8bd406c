package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/bundle"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/services"
	"github.com/gantry-project/gantry/internal/shim"
)

// finding is one problem of the containers' part of a system check, with
// the repair `gantry system prune` applies (nil: only `gantry rm` can
// finish it, or nothing can).
type finding struct {
	services.Problem
	repair func(ctx context.Context) error
}

// cgroupRoot is where the cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// checkContainers compares the container records with what exists on the
// machine: tasks whose shim is gone, records whose create never finished
// or whose snapshot is missing, and shims, shim processes, bundles,
// mounts, container files, runtime state and cgroups that belong to no
// container. It holds the create/delete lock so that a create or delete
// in progress is never reported half done.
func (c *containers) checkContainers(ctx context.Context) ([]finding, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []finding
	add := func(kind, subject, msg string, repair func(context.Context) error) {
		out = append(out, finding{Problem: services.Problem{Kind: kind, Subject: subject, Message: msg}, repair: repair})
	}
	known := map[string]bool{}    // ns/id of every record
	withTask := map[string]bool{} // ns/id of every record with a task
	nss, err := c.db.ListNamespaces(ctx)
	if err != nil {
		return nil, fmt.Errorf("check containers: %w", err)
	}
	for _, ns := range nss {
		recs, err := c.db.ListContainers(ctx, ns)
		if err != nil {
			return nil, fmt.Errorf("check containers of namespace %s: %w", ns, err)
		}
		for _, r := range recs {
			k := ns + "/" + r.ID
			known[k] = true
			if incomplete(r) {
				add("container", k, "its create never finished (gantry rm removes it)", nil)
				continue
			}
			if t, err := c.tasks.Get(ns, r.ID); err == nil {
				withTask[k] = true // a dead task's cgroup is gantry rm's to remove
				if t.Dead() {
					// gantryd cleans up after a dead shim as soon as it
					// notices; one still here is being, or could not be,
					// cleaned up.
					add("container", k, "its shim is gone and cleaning up after it has not finished (gantry rm finishes it)", nil)
				}
			}
			if r.SnapshotKey != "" {
				if _, err := c.sn.Mounts(ctx, r.SnapshotKey); errdefs.IsNotFound(err) {
					add("container", k, fmt.Sprintf("its snapshot %s is missing: it cannot start (gantry rm removes it)", r.SnapshotKey), nil)
				}
			}
		}
	}
	for _, t := range c.tasks.List() {
		if k := t.Namespace + "/" + t.ID; !known[k] {
			ns, id := t.Namespace, t.ID
			add("shim", k, "task of a container that does not exist (gantry system prune deletes it)", func(ctx context.Context) error {
				_, err := c.tasks.Delete(ctx, ns, id, "", true)
				if errdefs.IsNotFound(err) {
					return nil
				}
				return err
			})
		}
	}
	// Shim state directories without a record.
	c.eachDir(c.shims, func(ns, id, dir string) {
		if known[ns+"/"+id] {
			return
		}
		add("shim", dir, "shim state of a container that does not exist (gantry system prune removes it)", func(ctx context.Context) error {
			return removeShimDir(ctx, dir)
		})
	})
	// Shim processes serving a directory of a container that does not exist.
	for _, p := range shimProcesses(c.shims) {
		rel, err := filepath.Rel(c.shims, p.dir)
		parts := strings.Split(rel, string(filepath.Separator))
		if err != nil || len(parts) != 2 || known[parts[0]+"/"+parts[1]] {
			continue
		}
		pid := p.pid
		add("process", strconv.Itoa(pid), fmt.Sprintf("shim serving %s, of a container that does not exist (gantry system prune kills it)", p.dir), func(context.Context) error {
			return ignoreESRCH(syscall.Kill(pid, syscall.SIGKILL))
		})
	}
	// Bundles without a record.
	c.eachDir(c.bundles, func(ns, id, dir string) {
		if known[ns+"/"+id] {
			return
		}
		add("bundle", dir, "bundle of a container that does not exist (gantry system prune unmounts and removes it)", func(context.Context) error {
			return bundle.Remove(dir)
		})
	})
	// Mounts below the state directory that are not a known bundle's rootfs.
	state := filepath.Dir(c.bundles)
	mounts, err := mountsBelow(state)
	if err != nil {
		return nil, fmt.Errorf("check containers: %w", err)
	}
	for _, mp := range mounts {
		rel, err := filepath.Rel(c.bundles, mp)
		parts := strings.Split(rel, string(filepath.Separator))
		if err == nil && len(parts) == 3 && parts[2] == bundle.RootfsName && known[parts[0]+"/"+parts[1]] {
			continue
		}
		if err == nil && len(parts) >= 2 && !strings.HasPrefix(rel, "..") && !known[parts[0]+"/"+parts[1]] {
			continue // reported (and repaired) with its bundle
		}
		point := mp
		add("mount", point, "mounted below the state directory for no container (gantry system prune unmounts it)", func(context.Context) error {
			if err := unix.Unmount(point, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("unmount %s: %w", point, err)
			}
			return nil
		})
	}
	// Files of containers that do not exist.
	c.eachDir(c.dataRoot, func(ns, id, dir string) {
		if known[ns+"/"+id] {
			return
		}
		add("files", dir, "log and exit files of a container that does not exist (gantry system prune removes them)", func(context.Context) error {
			return os.RemoveAll(dir)
		})
	})
	// Runtime state of containers that do not exist: the runtime's --root
	// is <state>/runtime/<binary name>, one directory per container id.
	runtimes, _ := os.ReadDir(c.runtimeRoot)
	ids := map[string]bool{}
	for k := range known {
		ids[k[strings.IndexByte(k, '/')+1:]] = true
	}
	for _, rt := range runtimes {
		root := filepath.Join(c.runtimeRoot, rt.Name())
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			// A container id starts with a letter or digit: a dot
			// directory is the runtime's own (a cache).
			if !e.IsDir() || ids[e.Name()] || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			id, binary := e.Name(), ""
			if filepath.Base(c.runtime) == rt.Name() {
				binary = c.runtime
			}
			var repair func(context.Context) error
			msg := "runtime state of a container that does not exist"
			if binary != "" {
				msg += " (gantry system prune deletes it with the runtime)"
				repair = func(ctx context.Context) error {
					return runtimeDelete(ctx, binary, root, id)
				}
			}
			add("runtime", filepath.Join(root, id), msg, repair)
		}
	}
	// Cgroups under the cgroup parent of containers without a live task.
	expected := map[string]bool{}
	for k := range withTask {
		ns, id, _ := strings.Cut(k, "/")
		expected[ns+"-"+id] = true
	}
	for _, h := range cgroupHierarchies() {
		parent := filepath.Join(h, c.cgroupParent)
		ents, err := os.ReadDir(parent)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.IsDir() || expected[e.Name()] {
				continue
			}
			dir := filepath.Join(parent, e.Name())
			add("cgroup", dir, "cgroup of no running container (gantry system prune kills what is in it and removes it)", func(context.Context) error {
				return removeCgroup(dir)
			})
		}
	}
	return out, nil
}

// eachDir calls fn for every <root>/<ns>/<id> directory.
func (c *containers) eachDir(root string, fn func(ns, id, dir string)) {
	nss, _ := os.ReadDir(root)
	for _, ns := range nss {
		if !ns.IsDir() {
			continue
		}
		ids, _ := os.ReadDir(filepath.Join(root, ns.Name()))
		for _, id := range ids {
			if id.IsDir() {
				fn(ns.Name(), id.Name(), filepath.Join(root, ns.Name(), id.Name()))
			}
		}
	}
}

// removeShimDir ends the shim of dir, if it still runs, and removes what
// it left (the runtime's delete --force, the directory).
func removeShimDir(ctx context.Context, dir string) error {
	found, err := shim.Discover(filepath.Dir(filepath.Dir(dir)))
	if err != nil {
		return err
	}
	for _, f := range found {
		if f.Dir != dir {
			continue
		}
		if f.Alive {
			if err := ignoreESRCH(syscall.Kill(f.ShimPid, syscall.SIGKILL)); err != nil {
				return fmt.Errorf("kill shim %d: %w", f.ShimPid, err)
			}
			f.Alive = false
		}
		_, err := shim.Cleanup(ctx, f)
		return err
	}
	return nil
}

type shimProcess struct {
	pid int
	dir string
}

// shimProcesses lists the live gantry-shim processes whose --state-dir is
// below root.
func shimProcesses(root string) []shimProcess {
	var out []shimProcess
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("gantry-shim")) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && bytes.HasPrefix(bytes.TrimSpace(stat[i+1:]), []byte("Z")) {
				continue
			}
		}
		for _, a := range strings.Split(string(cmdline), "\x00") {
			if strings.HasPrefix(a, root+"/") {
				out = append(out, shimProcess{pid: pid, dir: a})
				break
			}
		}
	}
	return out
}

func ignoreESRCH(err error) error {
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// runtimeDelete runs `<binary> --root <root> delete --force <id>`.
func runtimeDelete(ctx context.Context, binary, root, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "--root", root, "delete", "--force", id).CombinedOutput()
	if err != nil {
		if _, serr := os.Stat(filepath.Join(root, id)); errors.Is(serr, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("runtime delete %s: %v: %s", id, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// cgroupHierarchies returns the mounted cgroup hierarchies: the one
// unified hierarchy of a cgroup v2 system, or each v1 controller's
// directory (symlinked aliases such as cpu,cpuacct skipped) plus the
// hybrid unified mount.
func cgroupHierarchies() []string {
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		return []string{cgroupRoot}
	}
	var out []string
	ents, _ := os.ReadDir(cgroupRoot)
	for _, e := range ents {
		if e.IsDir() && e.Type()&os.ModeSymlink == 0 {
			out = append(out, filepath.Join(cgroupRoot, e.Name()))
		}
	}
	return out
}

// removeCgroup kills what is left in a cgroup and removes it (children
// first).
func removeCgroup(dir string) error {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			if err := removeCgroup(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	var err error
	for range 50 {
		procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(procs)) {
			if pid, perr := strconv.Atoi(f); perr == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if err = unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}
