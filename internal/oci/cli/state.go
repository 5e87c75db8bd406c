package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/container"
)

func newState(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "state CONTAINER_ID",
		Short: "print the container's state as JSON",
		Args:  exactArgs(1, "a container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := runtimeFor(g).State(args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		},
	}
}

func newList(g *globals) *cobra.Command {
	var quiet bool
	var format string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "list the containers under --root",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("--format %q: want table or json: %w", format, errdefs.ErrInvalidArgument)
			}
			list, err := runtimeFor(g).List()
			if err != nil {
				return err
			}
			if quiet {
				for _, s := range list {
					fmt.Println(s.ID)
				}
				return nil
			}
			if format == "json" {
				if list == nil {
					list = []*container.State{}
				}
				return json.NewEncoder(os.Stdout).Encode(list)
			}
			w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
			fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
			for _, s := range list {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the container ids")
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}
