package cli

import (
	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/oci/container"
)

func addCreateFlags(cmd *cobra.Command, o *container.CreateOptions) {
	f := cmd.Flags()
	f.StringVarP(&o.Bundle, "bundle", "b", ".", "path to the bundle directory")
	f.StringVar(&o.PidFile, "pid-file", "", "write the container init's pid to this file")
	f.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket that receives the pty master (process.terminal)")
	f.BoolVar(&o.NoPivot, "no-pivot", false, "do not use pivot_root (for a rootfs on a ramdisk)")
	f.BoolVar(&o.NoNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
	f.IntVar(&o.PreserveFDs, "preserve-fds", 0, "pass this many fds after stdio (3, 4, ...) to the container")
}

func newCreate(g *globals) *cobra.Command {
	o := container.CreateOptions{}
	cmd := &cobra.Command{
		Use:   "create [flags] CONTAINER_ID",
		Short: "create a container from a bundle; its process waits for start",
		Args:  exactArgs(1, "a container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			_, err := runtimeFor(g).Create(cmd.Context(), o)
			return err
		},
	}
	addCreateFlags(cmd, &o)
	return cmd
}

func newRun(g *globals) *cobra.Command {
	o := container.CreateOptions{}
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [flags] CONTAINER_ID",
		Short: "create and start a container; in the foreground, exit with its status",
		Args:  exactArgs(1, "a container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			code, err := runtimeFor(g).Run(cmd.Context(), o, detach)
			if err != nil {
				return err
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	addCreateFlags(cmd, &o)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "return once the container runs")
	return cmd
}

func newStart(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "start CONTAINER_ID",
		Short: "start the process of a created container",
		Args:  exactArgs(1, "a container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runtimeFor(g).Start(cmd.Context(), args[0])
		},
	}
}

func newInit(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:    "init",
		Hidden: true,
		Short:  "the container side of create (internal)",
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return container.Init()
		},
	}
}
