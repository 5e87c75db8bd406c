// Command gantryd is Gantry's daemon: it serves the gRPC API of
// api/gantry/v1 on a unix socket. main only parses flags, builds the daemon
// with one constructor and runs it until SIGTERM or SIGINT.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/daemon"
)

func main() {
	var opts daemon.Options
	cmd := &cobra.Command{
		Use:           "gantryd",
		Short:         "Gantry's daemon: images, content and snapshots over a gRPC unix socket",
		Version:       daemon.Version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			d, err := daemon.New(opts)
			if err != nil {
				return err
			}
			return d.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.ConfigPath, "config", "", "TOML config file (default "+daemon.DefaultConfigPath+" if it exists)")
	f.StringVar(&opts.Address, "address", "", "unix socket to serve on (default "+daemon.DefaultAddress+")")
	f.StringVar(&opts.Root, "root", "", "persistent data directory (default "+daemon.DefaultRoot+")")
	f.StringVar(&opts.State, "state", "", "runtime state directory (default "+daemon.DefaultState+")")
	f.StringVar(&opts.LogLevel, "log-level", "", "debug, info, warn or error (default info)")
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "gantryd:", err)
		os.Exit(1)
	}
}
