package container

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Pids returns the host pids of every process in the container's cgroup
// (and its child cgroups), sorted. A stopped container whose cgroup still
// exists has none.
func (r *Runtime) Pids(id string) ([]int, error) {
	c, err := r.Store.Load(id)
	if err != nil {
		return nil, err
	}
	cg, err := containerCgroup(c)
	if err != nil {
		return nil, fmt.Errorf("ps %q: %w", id, err)
	}
	pids, err := cg.Pids()
	if err != nil {
		return nil, fmt.Errorf("ps %q: %w", id, err)
	}
	sort.Ints(pids)
	return pids, nil
}

// FilterPs keeps the header line of ps(1) output and the lines whose PID
// column holds one of pids. The PID column is found by name in the header.
func FilterPs(out string, pids []int) (string, error) {
	lines := strings.Split(out, "\n")
	header := lines[0]
	col := -1
	for i, f := range strings.Fields(header) {
		if f == "PID" {
			col = i
			break
		}
	}
	if col < 0 {
		return "", fmt.Errorf("ps output has no PID column (header %q): add pid to the ps -o format: %w", header, errdefs.ErrInvalidArgument)
	}
	want := make(map[int]bool, len(pids))
	for _, p := range pids {
		want[p] = true
	}
	var sb strings.Builder
	sb.WriteString(header)
	sb.WriteByte('\n')
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if col >= len(f) {
			return "", fmt.Errorf("ps output line %q has no PID column %d", line, col+1)
		}
		p, err := strconv.Atoi(f[col])
		if err != nil {
			return "", fmt.Errorf("ps output line %q: PID column %q is not a number", line, f[col])
		}
		if want[p] {
			sb.WriteString(line)
			sb.WriteByte('\n')
		}
	}
	return sb.String(), nil
}
