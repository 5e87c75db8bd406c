package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/metadata"
	"github.com/gantry-project/gantry/internal/task"
)

// autoRemoveTimeout bounds one removal of an exited container by gantryd
// (a delete's shim calls are bounded by shim_timeout on their own).
const autoRemoveTimeout = 5 * time.Minute

// deletedOnExit tells whether a container is removed once it exits, by its
// client or by gantryd (LabelAutoRemove "true" or "detached"): its shim
// then deletes it with the runtime as soon as it exits, and its writable
// layer may be volatile.
func deletedOnExit(labels map[string]string) bool {
	v := labels[labelAutoRemove]
	return v == gantryv1.AutoRemoveClient || v == gantryv1.AutoRemoveDetached
}

// removedByDaemon tells whether gantryd removes the container itself once
// its task exits (`gantry run -d --rm`).
func removedByDaemon(r metadata.Container) bool {
	return r.Labels[labelAutoRemove] == gantryv1.AutoRemoveDetached && r.Labels[labelDeleting] == ""
}

// autoRemover runs the removals of exited containers that gantryd does
// itself, one goroutine a container, after restore (ready) and until
// gantryd closes.
type autoRemover struct {
	ready  chan struct{} // closed once restore is done
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	pending map[string]bool // ns/id being removed
	closed  bool
	wg      sync.WaitGroup
}

func newAutoRemover() *autoRemover {
	ctx, cancel := context.WithCancel(context.Background())
	return &autoRemover{ready: make(chan struct{}), ctx: ctx, cancel: cancel, pending: map[string]bool{}}
}

// taskExited is told of each exit that task.Manager learns
// (task.Config.Exited). The exit of a task that is gone (its shim died and
// was cleaned up) is kept in the container's exit.json; a container that
// gantryd removes on exit is removed. The manager calls it on its own
// goroutine (for a dead shim, while it holds the task's delete), so it
// only reads the record and writes a file: the removal runs on a
// goroutine of its own.
func (c *containers) taskExited(e task.Exit) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := c.db.GetContainer(ctx, e.Namespace, e.ID)
	if err != nil {
		return // no container (a shim left by a deleted one): nothing to keep
	}
	if e.Gone {
		c.writeLastExit(e.Namespace, e.ID, lastExitOf(e.State))
	}
	if removedByDaemon(r) {
		c.autoRemove(e.Namespace, e.ID)
	}
}

// autoRemove removes container ns/id in the background, as DeleteContainer
// without force would (so one that was started again meanwhile stays),
// once restore is done; a removal already under way is not repeated.
func (c *containers) autoRemove(ns, id string) {
	a := c.autoRm
	k := ns + "/" + id
	a.mu.Lock()
	if a.closed || a.pending[k] {
		a.mu.Unlock()
		return
	}
	a.pending[k] = true
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		defer func() {
			a.mu.Lock()
			delete(a.pending, k)
			a.mu.Unlock()
		}()
		select {
		case <-a.ready:
		case <-a.ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(a.ctx, autoRemoveTimeout)
		defer cancel()
		_, err := c.deleteContainer(ctx, ns, id, &gantryv1.DeleteContainerRequest{Ref: id})
		switch {
		case err == nil:
			c.logger.Info("removed exited container (autoremove)", "namespace", ns, "id", id)
		case errdefs.IsNotFound(err):
			// Removed meanwhile.
		case errors.Is(err, errdefs.ErrFailedPrecondition):
			c.logger.Debug("autoremove: container started again; kept", "namespace", ns, "id", id, "error", err)
		default:
			c.logger.Warn("remove exited container (autoremove); gantry rm, or the next start of gantryd, retries",
				"namespace", ns, "id", id, "error", err)
		}
	}()
}

// autoRemoveReady lets the removals run: restore is done.
func (c *containers) autoRemoveReady() { close(c.autoRm.ready) }

// closeAutoRemove stops taking removals and gives those under way
// shutdownTimeout to finish before cancelling them (an interrupted one is
// finished at the next start: its record is marked deleting, or it is
// still an exited container to remove).
func (c *containers) closeAutoRemove() error {
	a := c.autoRm
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	select {
	case <-a.ready:
	default:
		a.cancel() // restore never finished: nothing may run
	}
	stopWithin(c.logger, "removals of exited containers still running at shutdown; cancelling them", a.wg.Wait, a.cancel)
	a.cancel()
	return nil
}
