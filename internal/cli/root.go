package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gantry-project/gantry/client"
	"github.com/gantry-project/gantry/internal/errdefs"
)

// Version is the CLI's version, set at build time with -ldflags
// "-X github.com/gantry-project/gantry/internal/cli.Version=...".
var Version = "dev"

// Exit codes, as docker's CLI uses them.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 125
)

// Environment variables that give the global flags their defaults.
const (
	EnvAddress   = "GANTRY_ADDRESS"
	EnvNamespace = "GANTRY_NAMESPACE"
)

// Stdio are the streams a command reads and writes; isTerminal tells
// whether Out is a terminal and terminalWidth its width.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// app is the state every command shares.
type app struct {
	stdio     Stdio
	address   string
	namespace string
	// tty reports whether Out is a terminal, and its width.
	tty func() (bool, int)
}

func (a *app) client() (*client.Client, error) {
	return client.New(a.address, client.WithNamespace(a.namespace))
}

// usageError is a bad flag or argument count: exit 125.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// args returns a cobra.PositionalArgs that checks the count and reports a
// usage error naming the expected arguments.
func args(min, max int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) < min || (max >= 0 && len(a) > max) {
			return usageError{fmt.Errorf("%q wants %s, got %d argument(s); see 'gantry %s --help'", cmd.CommandPath(), usage, len(a), cmd.Name())}
		}
		return nil
	}
}

// Main runs gantry with the process's stdio and returns the exit code.
func Main(argv []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	tty := func() (bool, int) {
		fd := int(os.Stdout.Fd())
		if !term.IsTerminal(fd) {
			return false, 0
		}
		w, _, err := term.GetSize(fd)
		if err != nil || w <= 0 {
			w = 80
		}
		return true, w
	}
	return Run(ctx, argv, Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, tty)
}

// Run runs gantry with the given arguments and streams and returns the
// exit code. tty may be nil (never a terminal).
func Run(ctx context.Context, argv []string, stdio Stdio, tty func() (bool, int)) int {
	if tty == nil {
		tty = func() (bool, int) { return false, 0 }
	}
	a := &app{stdio: stdio, tty: tty}
	root := newRootCommand(a)
	root.SetArgs(argv)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var x exitError
	if errors.As(err, &x) {
		if x.err != nil {
			fmt.Fprintln(stdio.Err, "gantry: "+errorLine(x.err, a.address))
		}
		return x.code
	}
	fmt.Fprintln(stdio.Err, "gantry: "+errorLine(err, a.address))
	var u usageError
	if errors.As(err, &u) {
		return ExitUsage
	}
	return ExitError
}

// errorLine is the one line the user reads for err (a line per error of
// a joined one), without the kind words that only repeat it: the kind
// picks the exit code, the words say nothing more.
func errorLine(err error, address string) string {
	var u *client.UnreachableError
	if errors.As(err, &u) {
		return fmt.Sprintf("cannot connect to gantryd at %s (%v): is gantryd running? Start it with 'gantryd &' or 'systemctl start gantryd'", u.Address, u.Err)
	}
	return errdefs.TrimKinds(err.Error())
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newRootCommand(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "gantry",
		Short:         "Gantry's command line: containers, images, content and snapshots, through gantryd",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, a []string) error {
			if len(a) > 0 {
				return usageError{fmt.Errorf("unknown command %q; see 'gantry --help'", a[0])}
			}
			return cmd.Help()
		},
		Args: cobra.ArbitraryArgs,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.address, "address", envOr(EnvAddress, client.DefaultAddress), "gantryd's socket (env "+EnvAddress+")")
	pf.StringVarP(&a.namespace, "namespace", "n", envOr(EnvNamespace, client.DefaultNamespace), "namespace (env "+EnvNamespace+")")

	system := &cobra.Command{Use: "system", Short: "Disk usage, garbage collection and checks", Args: args(0, 0, "a subcommand"), RunE: helpOrUnknown}
	system.AddCommand(newDiskUsageCommand(a), newPruneCommand(a), newCheckCommand(a))
	content := &cobra.Command{Use: "content", Short: "Low-level access to the content store", Args: args(0, 0, "a subcommand"), RunE: helpOrUnknown}
	content.AddCommand(newContentListCommand(a), newContentCatCommand(a))
	snapshot := &cobra.Command{Use: "snapshot", Aliases: []string{"snapshots"}, Short: "Low-level access to the snapshotter", Args: args(0, 0, "a subcommand"), RunE: helpOrUnknown}
	snapshot.AddCommand(newSnapshotListCommand(a), newSnapshotMountsCommand(a))

	root.AddCommand(
		newPullCommand(a),
		newImagesCommand(a),
		newRmiCommand(a),
		newTagCommand(a),
		newInspectCommand(a),
		newImportCommand(a),
		newExportCommand(a),
		newRunCommand(a),
		newCreateCommand(a),
		newStartCommand(a),
		newPsCommand(a),
		newLogsCommand(a),
		newExecCommand(a),
		newStopCommand(a),
		newKillCommand(a),
		newRmCommand(a),
		newWaitCommand(a),
		newTopCommand(a),
		newStatsCommand(a),
		newEventsCommand(a),
		newVersionCommand(a),
		newInfoCommand(a),
		newCompletionCommand(a),
		system, content, snapshot,
	)
	return root
}

func helpOrUnknown(cmd *cobra.Command, _ []string) error { return cmd.Help() }
