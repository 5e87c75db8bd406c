package cli

import (
	"github.com/spf13/cobra"
)

func newPause(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER_ID",
		Short: "suspend every process of a running container (freeze its cgroup)",
		Args:  exactArgs(1, "a container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runtimeFor(g).Pause(args[0])
		},
	}
}

func newResume(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resume CONTAINER_ID",
		Short: "resume every process of a paused container (thaw its cgroup)",
		Args:  exactArgs(1, "a container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runtimeFor(g).Resume(args[0])
		},
	}
}
