package daemon

import (
	"math"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int64
	}{
		{0, memLimitFloor},
		{3 << 20, memLimitFloor},
		{4 << 20, memLimitFloor},
		{10 << 20, 40 << 20},
		{math.MaxUint64, math.MaxInt64},
	} {
		if got := memoryLimit(tc.live); got != tc.want {
			t.Errorf("memoryLimit(%d) = %d, want %d", tc.live, got, tc.want)
		}
	}
}
