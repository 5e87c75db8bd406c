package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/gantry-project/gantry/internal/bundle"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/metadata"
	"github.com/gantry-project/gantry/internal/task"
)

// failedName is the file, in a container's directory under the root, that
// marks a container whose task could not be created or started because
// the runtime or the shim did not answer in time.
const failedName = "failed.json"

// StatusFailed is the status of a container marked failed.
const StatusFailed = "failed"

type failure struct {
	Error    string    `json:"error"`
	FailedAt time.Time `json:"failedAt"`
}

// markFailed records why the container's task failed; the next start, or
// rm, clears it.
func (c *containers) markFailed(ns, id string, cause error) {
	data, _ := json.Marshal(failure{Error: cause.Error(), FailedAt: time.Now().UTC()})
	if err := os.MkdirAll(c.dir(ns, id), 0o700); err == nil {
		if err := os.WriteFile(filepath.Join(c.dir(ns, id), failedName), data, 0o600); err != nil {
			c.logger.Warn("mark container failed", "id", id, "error", err)
		}
	}
}

func (c *containers) failed(ns, id string) (failure, bool) {
	data, err := os.ReadFile(filepath.Join(c.dir(ns, id), failedName))
	if err != nil {
		return failure{}, false
	}
	var f failure
	if json.Unmarshal(data, &f) != nil {
		return failure{}, false
	}
	return f, true
}

// hung tells whether err is a runtime or shim call that did not answer in
// time (rather than one that answered no).
func hung(err error) bool {
	return errors.Is(err, errdefs.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// failTask handles a task call that hung: the container is marked failed,
// then its task torn down (the shim's delete --force, or the cleanup of a
// dead shim) within the call timeout, whatever the caller's context.
func (c *containers) failTask(ctx context.Context, ns, id string, cause error) {
	c.markFailed(ns, id, cause)
	task.Fault(task.FaultAfterStartFailureMark)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if _, err := c.tasks.Delete(dctx, ns, id, "", true); err != nil && !errdefs.IsNotFound(err) {
		c.logger.Warn("tear down failed task; gantry rm -f retries", "namespace", ns, "id", id, "error", err)
	}
}

// incomplete tells whether a record is one whose create never finished:
// the spec is written into the record last.
func incomplete(r metadata.Container) bool { return len(r.Spec) == 0 }

// reconcile runs at start-up, after the tasks are restored: a delete that
// a crash interrupted is finished, a create that a crash interrupted is
// undone (its caller got an error, so the container never existed), and a
// task whose container record is gone is deleted.
func (c *containers) reconcile(ctx context.Context) {
	known := map[string]bool{}
	nss, err := c.db.ListNamespaces(ctx)
	if err != nil {
		c.logger.Warn("reconcile containers", "error", err)
		return
	}
	for _, ns := range nss {
		recs, err := c.db.ListContainers(ctx, ns)
		if err != nil {
			c.logger.Warn("reconcile containers", "namespace", ns, "error", err)
			continue
		}
		for _, r := range recs {
			if r.Labels[labelDeleting] != "" {
				// A delete a crash interrupted: finish it.
				if _, err := c.tasks.Delete(ctx, ns, r.ID, "", true); err != nil && !errdefs.IsNotFound(err) {
					c.logger.Warn("finish interrupted delete", "namespace", ns, "id", r.ID, "error", err)
					known[ns+"/"+r.ID] = true
					continue
				}
				if err := c.removeLeftovers(ctx, ns, r); err != nil {
					c.logger.Warn("finish interrupted delete", "namespace", ns, "id", r.ID, "error", err)
					known[ns+"/"+r.ID] = true
					continue
				}
				c.publish(ns, topicContainerDelete, r.ID, map[string]string{"name": r.Labels[labelName]})
				c.logger.Info("finished a delete interrupted by a crash", "namespace", ns, "id", r.ID)
				continue
			}
			if !incomplete(r) {
				known[ns+"/"+r.ID] = true
				continue
			}
			if _, err := c.tasks.Get(ns, r.ID); err == nil {
				known[ns+"/"+r.ID] = true
				continue
			}
			if err := c.removeLeftovers(ctx, ns, r); err != nil {
				c.logger.Warn("undo interrupted create", "namespace", ns, "id", r.ID, "error", err)
				continue
			}
			c.logger.Info("undid a create interrupted by a crash", "namespace", ns, "id", r.ID)
		}
	}
	for _, t := range c.tasks.List() {
		if known[t.Namespace+"/"+t.ID] {
			continue
		}
		if _, err := c.tasks.Delete(ctx, t.Namespace, t.ID, "", true); err != nil && !errdefs.IsNotFound(err) {
			c.logger.Warn("delete task without a container", "namespace", t.Namespace, "id", t.ID, "error", err)
			continue
		}
		c.logger.Info("deleted a task whose container is gone", "namespace", t.Namespace, "id", t.ID)
	}
}

// removeLeftovers removes the bundle, snapshot, files and record of a
// container that has no task.
func (c *containers) removeLeftovers(ctx context.Context, ns string, r metadata.Container) error {
	if err := bundle.Remove(bundle.Dir(c.bundles, ns, r.ID)); err != nil {
		return err
	}
	if r.SnapshotKey != "" {
		if err := c.sn.Remove(ctx, r.SnapshotKey); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	if err := os.RemoveAll(c.dir(ns, r.ID)); err != nil {
		return err
	}
	return c.db.DeleteContainer(ctx, ns, r.ID)
}
