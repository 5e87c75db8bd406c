package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/container"
)

func newPs(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags] CONTAINER_ID [ps options]",
		Short: "list the processes of a container (json: their pids; table: ps -ef lines, or ps with the options given)",
		Long: `ps lists the processes in the container's cgroup. With --format json it
prints their host pids as a JSON array. With --format table (the default) it
runs ps(1) with the options after the id ("-ef" when none; a leading "--" is
dropped) and prints the header and the lines whose PID column is one of them.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return fmt.Errorf("ps: want a container id and optional ps options: %w", errdefs.ErrInvalidArgument)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("--format %q: want table or json: %w", format, errdefs.ErrInvalidArgument)
			}
			pids, err := runtimeFor(g).Pids(args[0])
			if err != nil {
				return err
			}
			if format == "json" {
				if pids == nil {
					pids = []int{}
				}
				return json.NewEncoder(os.Stdout).Encode(pids)
			}
			psArgs := args[1:]
			if len(psArgs) > 0 && psArgs[0] == "--" {
				psArgs = psArgs[1:]
			}
			if len(psArgs) == 0 {
				psArgs = []string{"-ef"}
			}
			var stderr bytes.Buffer
			c := exec.Command("ps", psArgs...)
			c.Stderr = &stderr
			out, err := c.Output()
			if err != nil {
				return fmt.Errorf("ps %s: %w: %s", strings.Join(psArgs, " "), err, strings.TrimSpace(stderr.String()))
			}
			table, err := container.FilterPs(string(out), pids)
			if err != nil {
				return err
			}
			_, err = os.Stdout.WriteString(table)
			return err
		},
	}
	// everything after the id belongs to ps(1), "-o pid,comm" included
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}
