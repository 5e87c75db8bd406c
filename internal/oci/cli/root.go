package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/container"
	"github.com/gantry-project/gantry/internal/oci/nsexec"
	"github.com/gantry-project/gantry/internal/oci/state"
)

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "0.1.0-dev"

type globals struct {
	root          string
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rootless      string
	logFile       io.Closer
}

// exitError carries an exit status that is not a failure of gantry-oci
// (the container's own exit status from "run").
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs gantry-oci with args (without the program name) and returns
// the process exit status.
func Main(args []string) int {
	if len(args) == 1 && args[0] == "init" && os.Getenv(nsexec.EnvInitFD) != "" {
		// The container's init, started by create or exec: straight to
		// it, without building the command tree (it has no flags).
		if err := container.Init(); err != nil {
			fmt.Fprintln(os.Stderr, "gantry-oci: "+strings.ReplaceAll(err.Error(), "\n", " "))
			return 1
		}
		return 0
	}
	var err error
	g, o, direct := directExec(args)
	if direct {
		// A plain exec: its flags parsed as cobra would, without
		// building the command tree.
		err = runExec(context.Background(), g, *o)
	} else {
		g = &globals{}
		root := newRoot(g)
		root.SetArgs(args)
		err = root.ExecuteContext(context.Background())
	}
	if g.logFile != nil {
		defer g.logFile.Close()
	}
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintln(os.Stderr, "gantry-oci: "+msg)
	if g.log != "" {
		logger(g).Error(msg)
	}
	return 1
}

func newRoot(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:           "gantry-oci",
		Short:         "gantry-oci runs containers from OCI bundles (a runc-compatible OCI runtime)",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if g.systemdCgroup {
				return fmt.Errorf("--systemd-cgroup: the systemd cgroup driver is not implemented; use the cgroupfs driver (omit the flag): %w", errdefs.ErrNotImplemented)
			}
			switch g.logFormat {
			case "text", "json":
			default:
				return fmt.Errorf("--log-format %q: want text or json: %w", g.logFormat, errdefs.ErrInvalidArgument)
			}
			switch g.rootless {
			case "", "auto", "true", "false":
			default:
				return fmt.Errorf("--rootless %q: want true, false or auto: %w", g.rootless, errdefs.ErrInvalidArgument)
			}
			return nil
		},
	}
	cmd.SetVersionTemplate("gantry-oci version {{.Version}}\nspec: 1.3.0\n")
	f := cmd.PersistentFlags()
	f.StringVar(&g.root, "root", defaultRoot(), "directory for the containers' state")
	f.StringVar(&g.log, "log", "", "log file (default: stderr)")
	f.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	f.BoolVar(&g.debug, "debug", false, "log debug messages")
	f.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "use the systemd cgroup driver (not implemented)")
	f.StringVar(&g.rootless, "rootless", "auto", "rootless mode: true, false or auto")
	f.Lookup("rootless").NoOptDefVal = "true"
	cmd.CompletionOptions.DisableDefaultCmd = true

	cmd.AddCommand(
		newCreate(g), newStart(g), newRun(g), newState(g), newKill(g),
		newDelete(g), newList(g), newExec(g), newSpec(g), newFeatures(g), newInit(g),
		newPause(g), newResume(g), newPs(g), newUpdate(g), newEvents(g),
	)
	return cmd
}

// defaultRoot is --root's default: /run/gantry-oci, or for an unprivileged
// user $XDG_RUNTIME_DIR/gantry-oci when that is set, as runc does.
func defaultRoot() string {
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" && os.Geteuid() != 0 {
		return filepath.Join(dir, "gantry-oci")
	}
	return "/run/gantry-oci"
}

var cachedLogger *slog.Logger

func logger(g *globals) *slog.Logger {
	if cachedLogger != nil {
		return cachedLogger
	}
	var w io.Writer = os.Stderr
	if g.log != "" {
		f, err := os.OpenFile(g.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_SYNC, 0o644)
		if err == nil {
			w = f
			g.logFile = f
		}
	}
	level := slog.LevelWarn
	if g.debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{
		Level: level,
		// runc's clients (containerd, conmon) read "level":"error" and "msg".
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.LevelKey && len(groups) == 0 {
				return slog.String(slog.LevelKey, strings.ToLower(a.Value.String()))
			}
			return a
		},
	}
	if g.logFormat == "json" {
		cachedLogger = slog.New(slog.NewJSONHandler(w, opts))
	} else {
		cachedLogger = slog.New(slog.NewTextHandler(w, opts))
	}
	return cachedLogger
}

func runtimeFor(g *globals) *container.Runtime {
	rootless := g.rootless == "true" || (g.rootless == "auto" && os.Geteuid() != 0)
	return &container.Runtime{
		Store:    &state.Store{Root: g.root},
		Log:      logger(g),
		Rootless: rootless,
	}
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s: want %s, got %d argument(s): %w", cmd.Name(), names, len(args), errdefs.ErrInvalidArgument)
		}
		return nil
	}
}
