package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/client"
)

// containerJSON is the stable JSON form of a container (ps --format json,
// inspect). As docker's State.Pid and State.OOMKilled, Pid is 0 unless the
// container runs (or is paused), and OOMKilled tells that the kernel's OOM
// killer killed a process of the container in its last run.
type containerJSON struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Image       string            `json:"image"`
	Command     string            `json:"command"`
	Status      string            `json:"status"`
	State       string            `json:"state"`
	ExitCode    *int32            `json:"exitCode,omitempty"`
	OOMKilled   bool              `json:"oomKilled"`
	Pid         int32             `json:"pid"`
	CreatedAt   *time.Time        `json:"createdAt,omitempty"`
	ExitedAt    *time.Time        `json:"exitedAt,omitempty"`
	Runtime     string            `json:"runtime"`
	SnapshotKey string            `json:"snapshotKey"`
	Bundle      string            `json:"bundle"`
	LogPath     string            `json:"logPath"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// containerCommand is the user's command, as docker shows it: without the
// gantry-init of --init in front (inspect's spec keeps the real args).
func containerCommand(ctr *gantryv1.Container) string {
	var sp specFields
	if json.Unmarshal(ctr.GetSpec(), &sp) == nil && sp.Process != nil {
		return strings.Join(gantryv1.UserArgs(sp.Process.Args), " ")
	}
	return ""
}

// specFields is what the CLI reads of a container's runtime spec. Decoding
// only these keeps a command from building encoding/json's caches for the
// whole runtime-spec type tree (~1 ms in a fresh process) and the CLI from
// linking the spec modules.
type specFields struct {
	Process *struct {
		Args []string `json:"args"`
	} `json:"process"`
	Annotations map[string]string `json:"annotations"`
}

// running tells whether the container has a live process.
func running(ctr *gantryv1.Container) bool {
	return ctr.GetStatus() == "running" || ctr.GetStatus() == "paused"
}

// statusLine is docker's STATUS column.
func statusLine(ctr *gantryv1.Container) string {
	switch ctr.GetStatus() {
	case "stopped", "exited":
		code := strconv.Itoa(int(ctr.GetExitStatus()))
		if ctr.GetExitUnknown() {
			code = "unknown"
		}
		s := "Exited (" + code + ")"
		if ctr.GetExitedAt() != nil {
			s += " " + ago(ctr.GetExitedAt(), time.Now())
		}
		return s
	case "running":
		return upSince(ctr, time.Now())
	case "paused":
		return upSince(ctr, time.Now()) + " (Paused)"
	case "created":
		return "Created"
	}
	return ctr.GetStatus()
}

func toContainerJSON(ctr *gantryv1.Container) containerJSON {
	out := containerJSON{
		ID: ctr.GetId(), Name: ctr.GetName(), Image: ctr.GetImage(), Command: containerCommand(ctr),
		Status: statusLine(ctr), State: ctr.GetStatus(), Pid: ctr.GetPid(), CreatedAt: timeOrZero(ctr.GetCreatedAt()),
		ExitedAt: timeOrZero(ctr.GetExitedAt()), Runtime: ctr.GetRuntime(), SnapshotKey: ctr.GetSnapshotKey(),
		Bundle: ctr.GetBundle(), LogPath: ctr.GetLogPath(), Labels: ctr.GetLabels(), OOMKilled: ctr.GetOomKilled(),
	}
	if (ctr.GetStatus() == "stopped" || ctr.GetStatus() == "exited") && !ctr.GetExitUnknown() {
		code := ctr.GetExitStatus()
		out.ExitCode = &code
	}
	return out
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// withClient runs fn with a client, closing it after.
func (a *app) withClient(fn func(c *client.Client) error) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(c)
}

// eachRef runs fn for every ref, printing the ref on success as docker
// does; the errors are joined.
func (a *app) eachRef(refs []string, fn func(c *client.Client, ref string) error) error {
	return a.withClient(func(c *client.Client) error {
		var errs []error
		for _, ref := range refs {
			if err := fn(c, ref); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintln(a.stdio.Out, ref)
		}
		return errors.Join(errs...)
	})
}

// errNotRunning is the error of a command that needs a running container;
// it is of kind client.ErrFailedPrecondition.
var errNotRunning = fmt.Errorf("not running: %w", client.ErrFailedPrecondition)

// notRunningError names the container of errNotRunning.
type notRunningError struct{ ref string }

func (e notRunningError) Error() string { return "container " + e.ref + " is not running" }
func (e notRunningError) Unwrap() error { return errNotRunning }

func notRunning(ref string) error { return notRunningError{ref} }

// explainNotRunning returns err, the failure of a command that needs ref
// running, as "container REF is not running" when that is why it failed:
// the runtime's own words ("process has exited", "it is stopped") name
// its ids and internals. Other errors, and a ref that names nothing, keep
// their text.
func explainNotRunning(ctx context.Context, c *client.Client, ref string, err error) error {
	if err == nil || client.IsUnreachable(err) {
		return err
	}
	ctr, cerr := c.Container(ctx, ref)
	if cerr != nil || running(ctr) {
		return err
	}
	return notRunning(ref)
}

// interrupted tells whether the command's context has ended: Main cancels
// it on SIGINT or SIGTERM, so a stream the user stops ends with an error
// that is no failure of the command.
func interrupted(ctx context.Context) bool {
	return ctx.Err() != nil
}

// parseTail reads logs --tail: a number of lines, "all", or a negative
// number, which docker takes as all (-1 is returned for all).
func parseTail(tail string) (int64, error) {
	if tail == "all" {
		return -1, nil
	}
	n, err := strconv.ParseInt(tail, 10, 64)
	if err != nil {
		return 0, usageError{fmt.Errorf("invalid --tail %q: want a number or all", tail)}
	}
	return max(n, -1), nil
}

func newPsCommand(a *app) *cobra.Command {
	var all, quiet bool
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags]",
		Short: "List containers (running ones unless -a)",
		Args:  args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			return a.withClient(func(c *client.Client) error {
				ctrs, err := c.ListContainers(cmd.Context())
				if err != nil {
					return err
				}
				var shown []*gantryv1.Container
				for _, ctr := range ctrs {
					if all || running(ctr) {
						shown = append(shown, ctr)
					}
				}
				switch {
				case quiet:
					for _, ctr := range shown {
						fmt.Fprintln(a.stdio.Out, shortID(ctr.GetId()))
					}
					return nil
				case format == "json":
					out := []containerJSON{}
					for _, ctr := range shown {
						out = append(out, toContainerJSON(ctr))
					}
					return writeJSON(a.stdio.Out, out)
				}
				rows := [][]string{}
				for _, ctr := range shown {
					cmdline := containerCommand(ctr)
					if len(cmdline) > 20 {
						cmdline = cmdline[:19] + "…"
					}
					rows = append(rows, []string{shortID(ctr.GetId()), ctr.GetImage(), strconv.Quote(cmdline),
						ago(ctr.GetCreatedAt(), time.Now()), statusLine(ctr), ctr.GetName()})
				}
				return table(a.stdio.Out, []string{"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"}, rows)
			})
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show every container, not only running ones")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the ids")
	cmd.Flags().StringVar(&format, "format", "", "output format: json")
	return cmd
}

func newStartCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "start CONTAINER...",
		Short: "Start created or exited containers",
		Args:  args(1, -1, "at least one container"),
		RunE: func(cmd *cobra.Command, refs []string) error {
			return a.eachRef(refs, func(c *client.Client, ref string) error {
				ctx := cmd.Context()
				if _, err := c.CreateTask(ctx, ref); err != nil {
					// As docker: starting a running container does nothing.
					if ctr, cerr := c.Container(ctx, ref); cerr == nil && ctr.GetStatus() == "running" {
						return nil
					}
					return gantryError(err)
				}
				if _, err := c.StartTask(ctx, ref); err != nil {
					return gantryError(err)
				}
				return nil
			})
		},
	}
}

func newLogsCommand(a *app) *cobra.Command {
	var follow, timestamps bool
	var tail string
	cmd := &cobra.Command{
		Use:   "logs [flags] CONTAINER",
		Short: "Print a container's output",
		Args:  args(1, 1, "a container"),
		RunE: func(cmd *cobra.Command, refs []string) error {
			n, err := parseTail(tail)
			if err != nil {
				return err
			}
			return a.withClient(func(c *client.Client) error {
				err := c.Logs(cmd.Context(), refs[0], client.LogsOptions{Follow: follow, Tail: n}, func(e *gantryv1.LogEntry) error {
					w := a.stdio.Out
					if e.GetStream() == "stderr" {
						w = a.stdio.Err
					}
					if timestamps {
						fmt.Fprint(w, e.GetTime().AsTime().Format(time.RFC3339Nano)+" ")
					}
					_, err := w.Write(e.GetData())
					return err
				})
				if err != nil && interrupted(cmd.Context()) {
					// Ctrl-C is how `logs -f` is meant to end: quietly,
					// as docker's does and as `events` ends here.
					return nil
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the output until the container stops")
	cmd.Flags().StringVar(&tail, "tail", "all", "number of lines to show from the end")
	cmd.Flags().BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	return cmd
}

func newExecCommand(a *app) *cobra.Command {
	var interactive, tty, detach bool
	var user, workdir string
	var env []string
	cmd := &cobra.Command{
		Use:   "exec [flags] CONTAINER COMMAND [ARG...]",
		Short: "Run a command in a running container",
		Args:  args(2, -1, "a container and a command"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ctx := cmd.Context()
			var envs []string
			for _, e := range env {
				envs = append(envs, expandEnv(e))
			}
			return a.withClient(func(c *client.Client) error {
				b := make([]byte, 8)
				rand.Read(b)
				execID := "exec-" + hex.EncodeToString(b)
				req := &gantryv1.ExecTaskRequest{Ref: argv[0], ExecId: execID, Args: argv[1:], Env: envs,
					User: user, Cwd: workdir, Tty: tty, Stdin: interactive}
				if detach {
					_, err := c.Exec(ctx, req)
					return gantryError(err)
				}
				code, err := a.runAttached(ctx, c, argv[0], execID, interactive, tty, func() error {
					_, err := c.Exec(ctx, req)
					return err
				}, func(ctx context.Context) (*gantryv1.TaskState, error) { return c.Wait(ctx, argv[0], execID) })
				c.DeleteTask(context.WithoutCancel(ctx), argv[0], execID, false)
				if err != nil {
					return gantryError(err)
				}
				if code != 0 {
					return exitError{code: code}
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&interactive, "interactive", "i", false, "attach stdin")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-terminal")
	f.BoolVarP(&detach, "detach", "d", false, "run in the background")
	f.StringVarP(&user, "user", "u", "", "user (name|uid[:group|gid])")
	f.StringVarP(&workdir, "workdir", "w", "", "working directory")
	f.StringArrayVarP(&env, "env", "e", nil, "set an environment variable")
	return cmd
}

// parseSignal accepts a number, a name (KILL, SIGKILL, sigterm).
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal %q", s)
}

func newKillCommand(a *app) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [flags] CONTAINER...",
		Short: "Signal containers (SIGKILL by default)",
		Args:  args(1, -1, "at least one container"),
		RunE: func(cmd *cobra.Command, refs []string) error {
			sig, err := parseSignal(signal)
			if err != nil {
				return usageError{err}
			}
			return a.eachRef(refs, func(c *client.Client, ref string) error {
				return explainNotRunning(cmd.Context(), c, ref, c.Kill(cmd.Context(), ref, "", sig, false))
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "KILL", "signal to send")
	return cmd
}

// stop sends the image's stop signal (SIGTERM by default), waits up to
// timeout, then kills every process.
func stop(ctx context.Context, c *client.Client, ref string, timeout time.Duration) error {
	ctr, err := c.Container(ctx, ref)
	if err != nil {
		return err
	}
	if !running(ctr) {
		return nil
	}
	sig := syscall.SIGTERM
	var sp specFields
	if json.Unmarshal(ctr.GetSpec(), &sp) == nil {
		if s := sp.Annotations[gantryv1.AnnotationStopSignal]; s != "" {
			if v, err := parseSignal(s); err == nil {
				sig = v
			}
		}
	}
	if ctr.GetStatus() == "paused" {
		c.Resume(ctx, ref)
	}
	if err := c.Kill(ctx, ref, "", sig, false); err != nil {
		if errors.Is(explainNotRunning(ctx, c, ref, err), errNotRunning) {
			return nil // it stopped by itself meanwhile
		}
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	_, err = c.Wait(wctx, ref, "")
	cancel()
	if err == nil {
		return nil
	}
	if err := c.Kill(ctx, ref, "", syscall.SIGKILL, true); err != nil {
		return err
	}
	_, err = c.Wait(ctx, ref, "")
	return err
}

func newStopCommand(a *app) *cobra.Command {
	var seconds int
	cmd := &cobra.Command{
		Use:   "stop [flags] CONTAINER...",
		Short: "Stop containers: the stop signal, then SIGKILL after a grace period",
		Args:  args(1, -1, "at least one container"),
		RunE: func(cmd *cobra.Command, refs []string) error {
			return a.eachRef(refs, func(c *client.Client, ref string) error {
				return stop(cmd.Context(), c, ref, time.Duration(seconds)*time.Second)
			})
		},
	}
	cmd.Flags().IntVarP(&seconds, "time", "t", 10, "seconds to wait before killing")
	return cmd
}

func newRmCommand(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [flags] CONTAINER...",
		Aliases: []string{"remove"},
		Short:   "Remove containers",
		Args:    args(1, -1, "at least one container"),
		RunE: func(cmd *cobra.Command, refs []string) error {
			return a.withClient(func(c *client.Client) error {
				var errs []error
				for _, ref := range refs {
					_, err := c.DeleteContainer(cmd.Context(), ref, force, false)
					switch {
					case err == nil:
						fmt.Fprintln(a.stdio.Out, ref)
					case force && errors.Is(err, client.ErrNotFound):
						// As docker's rm -f: said, but not a failure
						// (the container is gone either way).
						fmt.Fprintln(a.stdio.Err, "gantry: "+errorLine(err, a.address))
					default:
						errs = append(errs, err)
					}
				}
				return errors.Join(errs...)
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	return cmd
}

func newWaitCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER...",
		Short: "Wait for containers to stop and print their exit codes",
		Args:  args(1, -1, "at least one container"),
		RunE: func(cmd *cobra.Command, refs []string) error {
			return a.withClient(func(c *client.Client) error {
				var errs []error
				for _, ref := range refs {
					st, err := c.Wait(cmd.Context(), ref, "")
					if err != nil {
						errs = append(errs, err)
						continue
					}
					if st.GetExitUnknown() {
						fmt.Fprintln(a.stdio.Out, "unknown")
						continue
					}
					fmt.Fprintln(a.stdio.Out, st.GetExitStatus())
				}
				return errors.Join(errs...)
			})
		},
	}
}

func newTopCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "top CONTAINER",
		Short: "List a container's processes",
		Args:  args(1, 1, "a container"),
		RunE: func(cmd *cobra.Command, refs []string) error {
			return a.withClient(func(c *client.Client) error {
				pids, err := c.Pids(cmd.Context(), refs[0])
				if err != nil {
					return explainNotRunning(cmd.Context(), c, refs[0], err)
				}
				if len(pids) == 0 {
					// A running container has at least its first process.
					if ctr, err := c.Container(cmd.Context(), refs[0]); err == nil && !running(ctr) {
						return notRunning(refs[0])
					}
				}
				rows := [][]string{}
				for _, p := range pids {
					data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
					rows = append(rows, []string{strconv.Itoa(int(p)), strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))})
				}
				return table(a.stdio.Out, []string{"PID", "CMD"}, rows)
			})
		},
	}
}

func newEventsCommand(a *app) *cobra.Command {
	var filters []string
	var since uint64
	var format string
	var all bool
	cmd := &cobra.Command{
		Use:   "events [flags]",
		Short: "Stream container and task events",
		Args:  args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			return a.withClient(func(c *client.Client) error {
				return c.Subscribe(cmd.Context(), filters, since, all, func(ev *gantryv1.Event) error {
					if format == "json" {
						data, _ := json.Marshal(map[string]any{
							"sequence": ev.GetSequence(), "time": ev.GetTimestamp().AsTime(), "namespace": ev.GetNamespace(),
							"topic": ev.GetTopic(), "id": ev.GetId(), "attributes": ev.GetAttributes(),
						})
						_, err := fmt.Fprintln(a.stdio.Out, string(data))
						return err
					}
					var attrs []string
					for k, v := range ev.GetAttributes() {
						attrs = append(attrs, k+"="+v)
					}
					_, err := fmt.Fprintf(a.stdio.Out, "%d %s %s %s %s %s\n", ev.GetSequence(), ev.GetTimestamp().AsTime().Format(time.RFC3339Nano),
						ev.GetNamespace(), ev.GetTopic(), ev.GetId(), strings.Join(attrs, ","))
					return err
				})
			})
		},
	}
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter: topic=/tasks/*, id=ID, namespace=NS")
	cmd.Flags().Uint64Var(&since, "since", 0, "replay the events after this sequence number first")
	cmd.Flags().StringVar(&format, "format", "", "output format: json")
	cmd.Flags().BoolVar(&all, "all-namespaces", false, "events of every namespace")
	return cmd
}

// containerInspectJSON is a container as inspect shows it: with its spec.
type containerInspectJSON struct {
	containerJSON
	Spec json.RawMessage `json:"spec,omitempty"`
}
