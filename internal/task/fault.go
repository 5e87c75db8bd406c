package task

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// FaultEnv names the environment variable that arms a fault point, for
// the reliability tests: GANTRYD_FAULT=<point>[:count] makes the process
// SIGKILL itself the count-th time (default the first) it reaches the
// named point, as if it had been killed there. Unset, Fault costs one
// comparison.
const FaultEnv = "GANTRYD_FAULT"

// Fault points, in the order a container lives through them.
const (
	FaultAfterContainerRecord  = "after-container-record"   // create: first record put, no snapshot yet
	FaultAfterSnapshotPrepare  = "after-snapshot-prepare"   // create: snapshot prepared, bundle not mounted
	FaultAfterBundleWritten    = "after-bundle-written"     // create: rootfs mounted, config.json written, record not final
	FaultBeforeShimLaunch      = "before-shim-launch"       // start: task reserved, shim not started
	FaultAfterShimLaunch       = "after-shim-launch"        // start: shim up, container created
	FaultAfterTaskStart        = "after-task-start"         // start: container started, not reported
	FaultAfterExecStart        = "after-exec-start"         // exec: process started, not reported
	FaultBeforeKill            = "before-kill"              // stop: nothing signalled yet
	FaultAfterKill             = "after-kill"               // stop: signal sent, not reported
	FaultBeforeShimDelete      = "before-shim-delete"       // delete: task still there
	FaultAfterShimDelete       = "after-shim-delete"        // delete: shim gone, bundle and snapshot left
	FaultAfterBundleRemove     = "after-bundle-remove"      // delete: rootfs unmounted, snapshot left
	FaultAfterSnapshotRemove   = "after-snapshot-remove"    // delete: snapshot gone, record left
	FaultAfterMetadataDelete   = "after-metadata-delete"    // delete: record gone, not reported
	FaultAfterStartFailureMark = "after-start-failure-mark" // start failed: marked failed, task not torn down
)

// FaultPoints lists every fault point.
var FaultPoints = []string{
	FaultAfterContainerRecord, FaultAfterSnapshotPrepare, FaultAfterBundleWritten,
	FaultBeforeShimLaunch, FaultAfterShimLaunch, FaultAfterTaskStart, FaultAfterExecStart,
	FaultBeforeKill, FaultAfterKill, FaultBeforeShimDelete, FaultAfterShimDelete,
	FaultAfterBundleRemove, FaultAfterSnapshotRemove, FaultAfterMetadataDelete, FaultAfterStartFailureMark,
}

var fault = struct {
	once  sync.Once
	point string
	count int

	mu   sync.Mutex
	seen int
}{}

// ParseFault parses a GANTRYD_FAULT value: "<point>" or "<point>:<count>"
// with count >= 1. ok is false for an empty or malformed value.
func ParseFault(v string) (point string, count int, ok bool) {
	point, n, hasCount := strings.Cut(strings.TrimSpace(v), ":")
	if point == "" {
		return "", 0, false
	}
	count = 1
	if hasCount {
		c, err := strconv.Atoi(n)
		if err != nil || c < 1 {
			return "", 0, false
		}
		count = c
	}
	return point, count, true
}

// Fault is a named fault point: when GANTRYD_FAULT arms it, the process
// kills itself with SIGKILL there (no deferred call runs, no file is
// closed: what a kill -9 at that instant would leave).
func Fault(point string) {
	fault.once.Do(func() {
		if p, c, ok := ParseFault(os.Getenv(FaultEnv)); ok {
			fault.point, fault.count = p, c
		}
	})
	if fault.point == "" || fault.point != point {
		return
	}
	fault.mu.Lock()
	fault.seen++
	hit := fault.seen == fault.count
	fault.mu.Unlock()
	if hit {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
