package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/client"
)

// runtimeStats is the part of runc's stats layout (what `events --stats`
// prints, gantry-oci's and runc's alike) that the stats table shows. The
// layout is the same on cgroup v1 and v2; what differs is memory.raw (v1's
// memory.stat has total_* keys, v2's does not) and the limit that means
// none (v1's page-rounded LLONG_MAX from runc, math.MaxUint64 from
// gantry-oci and from v2's "max").
type runtimeStats struct {
	CPU struct {
		Usage struct {
			Total uint64 `json:"total"`
		} `json:"usage"`
	} `json:"cpu"`
	Memory struct {
		Usage struct {
			Usage uint64 `json:"usage"`
			Limit uint64 `json:"limit"`
		} `json:"usage"`
		Raw map[string]uint64 `json:"raw"`
	} `json:"memory"`
	Pids struct {
		Current uint64 `json:"current"`
	} `json:"pids"`
}

// statsRow is one container's line of the stats table.
type statsRow struct {
	CPUNanos uint64
	// Memory is the usage without the inactive page cache, as docker shows
	// it; Limit is 0 when there is none.
	Memory, Limit uint64
	Pids          uint64
}

// parseStats reads the stats JSON gantryd answers: the "data" object of the
// runtime's stats event, or the whole event ({"type":"stats","data":...}).
func parseStats(data []byte) (statsRow, error) {
	var ev struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return statsRow{}, fmt.Errorf("read stats: %w", err)
	}
	if len(ev.Data) > 0 {
		data = ev.Data
	}
	var s runtimeStats
	if err := json.Unmarshal(data, &s); err != nil {
		return statsRow{}, fmt.Errorf("read stats: %w", err)
	}
	row := statsRow{CPUNanos: s.CPU.Usage.Total, Memory: s.Memory.Usage.Usage, Pids: s.Pids.Current}
	// docker's calculateMemUsageUnixNoCache: v1 first (total_inactive_file
	// counts the whole hierarchy), else v2's inactive_file.
	if v, v1 := s.Memory.Raw["total_inactive_file"]; v1 {
		if v < row.Memory {
			row.Memory -= v
		}
	} else if v := s.Memory.Raw["inactive_file"]; v < row.Memory {
		row.Memory -= v
	}
	if l := s.Memory.Usage.Limit; l < 1<<62 {
		row.Limit = l
	}
	return row, nil
}

// cells are the row's columns as the table prints them.
func (r statsRow) cells(name string) []string {
	limit := "-"
	if r.Limit > 0 {
		limit = binarySize(r.Limit)
	}
	return []string{name, fmt.Sprintf("%.2fs", float64(r.CPUNanos)/1e9), binarySize(r.Memory) + " / " + limit, strconv.FormatUint(r.Pids, 10)}
}

// binarySize formats bytes with binary units, as docker stats does
// ("64MiB", "1.02MiB").
func binarySize(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}

func newStatsCommand(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "stats [flags] [CONTAINER...]",
		Short: "Show containers' resource use once (every running container without arguments)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, refs []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			return a.withClient(func(c *client.Client) error {
				ctx := cmd.Context()
				targets, err := statsTargets(ctx, c, refs)
				if err != nil {
					return err
				}
				rows := [][]string{}
				raw := []json.RawMessage{}
				var errs []error
				for _, tg := range targets {
					data, err := c.Stats(ctx, tg.ref)
					if err != nil {
						err = explainNotRunning(ctx, c, tg.ref, err)
						if !tg.named && errors.Is(err, errNotRunning) {
							continue // it stopped since the list: not one to show
						}
						errs = append(errs, err)
						continue
					}
					raw = append(raw, data)
					row, err := parseStats(data)
					if err != nil {
						errs = append(errs, fmt.Errorf("stats of %s: %w", tg.name, err))
						continue
					}
					rows = append(rows, row.cells(tg.name))
				}
				switch {
				case format == "json":
					err = writeJSON(a.stdio.Out, raw)
				case len(rows) > 0 || len(errs) == 0:
					err = table(a.stdio.Out, []string{"CONTAINER", "CPU TIME", "MEM USAGE / LIMIT", "PIDS"}, rows)
				}
				return errors.Join(append(errs, err)...)
			})
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "output format: json")
	// Gantry's stats always shows the numbers once; the flag is docker's
	// way of asking for that, so scripts written for docker run as they are.
	cmd.Flags().Bool("no-stream", false, "show the numbers once (what gantry stats always does)")
	return cmd
}

// statsTarget is one container stats shows: ref asks gantryd, name heads
// its row, named tells one the user named from one stats found running.
type statsTarget struct {
	ref, name string
	named     bool
}

// statsTargets returns the containers refs names, each shown by the ref
// given, or without refs every running container (as docker's stats),
// asked by id and shown by name, newest first as ps lists them.
func statsTargets(ctx context.Context, c *client.Client, refs []string) ([]statsTarget, error) {
	var out []statsTarget
	for _, ref := range refs {
		out = append(out, statsTarget{ref: ref, name: ref, named: true})
	}
	if len(refs) > 0 {
		return out, nil
	}
	ctrs, err := c.ListContainers(ctx)
	if err != nil {
		return nil, err
	}
	for _, ctr := range ctrs {
		if running(ctr) {
			out = append(out, statsTarget{ref: ctr.GetId(), name: ctr.GetName()})
		}
	}
	return out, nil
}
