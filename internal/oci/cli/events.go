package cli

import (
	"encoding/json"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/oci/container"
)

func newEvents(g *globals) *cobra.Command {
	var stats bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "events [flags] CONTAINER_ID",
		Short: "print the container's stats every --interval and its OOM events, as JSON lines, until it stops",
		Long: `events prints one JSON object a line, as runc does:
{"type":"stats","id":ID,"data":{"cpu":...,"memory":...,"pids":...,"blkio":...,"hugetlb":...}}
every --interval, and {"type":"oom","id":ID} when the OOM killer acts in the
container. It returns when the container stops. With --stats it prints the
stats once and returns.`,
		Args: exactArgs(1, "a container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := runtimeFor(g)
			enc := json.NewEncoder(os.Stdout)
			if stats {
				s, err := r.Stats(args[0])
				if err != nil {
					return err
				}
				return enc.Encode(&container.Event{Type: "stats", ID: args[0], Data: s})
			}
			return r.Events(cmd.Context(), args[0], interval, func(e *container.Event) error {
				return enc.Encode(e)
			})
		},
	}
	cmd.Flags().BoolVar(&stats, "stats", false, "print the stats once and exit")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "time between two stats events")
	return cmd
}
