package daemon

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gantryd's live heap is small (3 MB with 100 running containers), but
// with the Go runtime's defaults the memory it freed stays mapped: its RSS
// was 31 MB there, 10 MB of it heap the collector no longer used. A soft
// memory limit makes the runtime return that memory to the kernel. The
// limit follows the live heap (memLimitFactor times it, at least
// memLimitFloor), so a daemon that really needs more memory gets it without
// the collector running all the time. An explicit GOMEMLIMIT wins.
const (
	memLimitFloor  = 16 << 20
	memLimitFactor = 4
	memLimitEvery  = 15 * time.Second
)

// memoryLimit returns the soft limit for a live heap of live bytes.
func memoryLimit(live uint64) int64 {
	if live > math.MaxInt64/memLimitFactor {
		return math.MaxInt64
	}
	return max(int64(live)*memLimitFactor, memLimitFloor)
}

// tuneMemoryLimit keeps the soft memory limit at memoryLimit(live heap)
// until ctx ends.
func tuneMemoryLimit(ctx context.Context) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := func() {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			debug.SetMemoryLimit(memoryLimit(sample[0].Value.Uint64()))
		}
	}
	set()
	t := time.NewTicker(memLimitEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			set()
		}
	}
}
