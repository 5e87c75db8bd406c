package cli

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/oci/container"
)

const updateLong = `update changes the cgroup limits of a created, running or paused container.
--resources reads a runtime-spec linux.resources JSON object from a file, or
from standard input when it is "-":

{
  "memory": {"limit": 0, "reservation": 0, "swap": 0},
  "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0,
          "realtimePeriod": 0, "cpus": "", "mems": ""},
  "blockIO": {"weight": 0},
  "pids": {"limit": 0}
}

Omitted fields and zero numbers are left unchanged. The flags below override
the same fields of --resources (runc ignores them when --resources is given).
Memory sizes take plain bytes or k, m, g, t, p suffixes (binary: 64m is
64 MiB); -1 means unlimited. The merged limits are saved: a later update
builds on them.`

func newUpdate(g *globals) *cobra.Command {
	var resources string
	var f container.UpdateFlags
	cmd := &cobra.Command{
		Use:   "update [flags] CONTAINER_ID",
		Short: "update a container's resource limits",
		Long:  updateLong,
		Args:  exactArgs(1, "a container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := &specs.LinuxResources{}
			if resources != "" {
				in := os.Stdin
				name := "-"
				if resources != "-" {
					file, err := os.Open(resources)
					if err != nil {
						return fmt.Errorf("--resources: %w", err)
					}
					defer file.Close()
					in, name = file, resources
				}
				var err error
				if r, err = container.ReadResources(in, name); err != nil {
					return err
				}
			}
			if err := f.Apply(r); err != nil {
				return err
			}
			return runtimeFor(g).Update(args[0], r)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&resources, "resources", "r", "", `file with the linux.resources JSON to apply, or "-" for standard input`)
	fl.StringVar(&f.Memory, "memory", "", "memory limit in bytes (k, m, g suffixes; -1: unlimited)")
	fl.StringVar(&f.MemoryReservation, "memory-reservation", "", "memory reservation (soft limit) in bytes")
	fl.StringVar(&f.MemorySwap, "memory-swap", "", "memory+swap limit in bytes; -1: unlimited swap")
	fl.StringVar(&f.CPUShares, "cpu-share", "", "CPU shares (relative weight)")
	fl.StringVar(&f.CPUShares, "cpu-shares", "", "alias of --cpu-share")
	fl.StringVar(&f.CPUQuota, "cpu-quota", "", "CFS quota in microseconds per period (-1: no limit)")
	fl.StringVar(&f.CPUPeriod, "cpu-period", "", "CFS period in microseconds")
	fl.StringVar(&f.CPURtPeriod, "cpu-rt-period", "", "realtime period in microseconds")
	fl.StringVar(&f.CPURtRuntime, "cpu-rt-runtime", "", "realtime runtime in microseconds per period")
	fl.StringVar(&f.CpusetCpus, "cpuset-cpus", "", "CPUs the container may use (\"0-1,3\")")
	fl.StringVar(&f.CpusetMems, "cpuset-mems", "", "memory nodes the container may use")
	fl.StringVar(&f.PidsLimit, "pids-limit", "", "maximum number of tasks (-1: unlimited)")
	fl.StringVar(&f.BlkioWeight, "blkio-weight", "", "block IO weight, 10 to 1000")
	fl.MarkHidden("cpu-shares")
	return cmd
}
