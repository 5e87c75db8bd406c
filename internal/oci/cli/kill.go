package cli

import (
	"github.com/spf13/cobra"

	"fmt"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/container"
)

func newKill(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] CONTAINER_ID [SIGNAL]",
		Short: "send a signal (default SIGTERM) to the container's init",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("kill: want a container id and an optional signal: %w", errdefs.ErrInvalidArgument)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "SIGTERM"
			if len(args) == 2 {
				name = args[1]
			}
			sig, err := container.ParseSignal(name)
			if err != nil {
				return err
			}
			return runtimeFor(g).Kill(args[0], sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "signal every process of the container")
	return cmd
}

func newDelete(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete [flags] CONTAINER_ID",
		Short: "delete a stopped container (--force: any container)",
		Args:  exactArgs(1, "a container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := runtimeFor(g).Delete(cmd.Context(), args[0], force)
			if err != nil && force && errdefs.IsNotFound(err) {
				return nil // runc: delete --force of a missing container succeeds
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container first if it runs")
	return cmd
}
