package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/container"
)

func newExec(g *globals) *cobra.Command {
	o := container.ExecOptions{}
	cmd := &cobra.Command{
		Use:   "exec [flags] CONTAINER_ID [COMMAND [ARGS...]]",
		Short: "run a new process in a running container",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return fmt.Errorf("exec: want a container id: %w", errdefs.ErrInvalidArgument)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID, o.Args = args[0], args[1:]
			return execRunner(cmd.Context(), g, o)
		},
	}
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.StringVarP(&o.ProcessFile, "process", "p", "", "a runtime-spec process JSON file (- for stdin)")
	f.BoolVarP(&o.Tty, "tty", "t", false, "allocate a pty")
	f.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket that receives the pty master")
	f.BoolVarP(&o.Detach, "detach", "d", false, "return once the process runs")
	f.StringVar(&o.PidFile, "pid-file", "", "write the process's pid to this file")
	f.StringVar(&o.Cwd, "cwd", "", "working directory in the container")
	f.StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable (KEY=VALUE)")
	f.StringVarP(&o.User, "user", "u", "", "uid[:gid]")
	f.Int64SliceVarP(&o.AdditionalGids, "additional-gids", "g", nil, "additional gids")
	f.StringArrayVarP(&o.Caps, "cap", "c", nil, "add a capability")
	f.BoolVar(&o.NoNewPrivs, "no-new-privs", false, "set no_new_privs")
	f.StringVar(&o.Apparmor, "apparmor", "", "AppArmor profile")
	f.StringVar(&o.ProcessLabel, "process-label", "", "SELinux label")
	f.IntVar(&o.PreserveFDs, "preserve-fds", 0, "pass this many fds after stdio to the process")
	f.BoolVar(&o.IgnorePaused, "ignore-paused", false, "exec even if the container is paused")
	f.StringVar(&o.Cgroup, "cgroup", "", "run in a sub-cgroup of the container: PATH or CONTROLLER[,CONTROLLER]:PATH")
	return cmd
}

// execRunner is runExec; tests replace it to see what cobra parsed.
var execRunner = runExec

// runExec runs exec with the parsed flags (by cobra or directExec).
func runExec(ctx context.Context, g *globals, o container.ExecOptions) error {
	code, err := runtimeFor(g).Exec(ctx, o)
	if err != nil {
		return err
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}
