package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/client"
)

// Exit codes of run and exec, as docker's.
const (
	ExitCannotRun = 126
	ExitNotFound  = 127
)

// exitError ends the command with code; an empty message prints nothing
// (the container's own exit status).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e exitError) Unwrap() error { return e.err }

// gantryError is a failure of Gantry itself (not of the container's
// command): exit 125, or 126/127 when the runtime could not run the
// command or did not find it.
func gantryError(err error) error {
	if err == nil {
		return nil
	}
	var u *client.UnreachableError
	if errors.As(err, &u) {
		return exitError{ExitUsage, err}
	}
	msg := err.Error()
	// The runtime's own words are what the user needs: `exec "x": executable
	// file not found in $PATH`.
	if i := strings.Index(msg, "process.args[0]: "); i >= 0 {
		short := strings.TrimSuffix(msg[i+len("process.args[0]: "):], " (exit status 1)")
		err = errors.New(short)
	}
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory") && strings.Contains(msg, "process.args"):
		return exitError{ExitNotFound, err}
	case strings.Contains(msg, "permission denied") && strings.Contains(msg, "process.args"),
		strings.Contains(msg, "is a directory") && strings.Contains(msg, "process.args"):
		return exitError{ExitCannotRun, err}
	}
	return exitError{ExitUsage, err}
}

// containerFlags are the flags of run and create.
type containerFlags struct {
	name, user, workdir, entrypoint, memory, network, runtime string
	env, envFiles, volumes, tmpfs, capAdd, capDrop            []string
	cpus                                                      float64
	pidsLimit                                                 int64
	interactive, tty, readOnly, privileged, init              bool
}

func (f *containerFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.StringVar(&f.name, "name", "", "the container's name")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep stdin open and attach it")
	fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-terminal")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable (KEY=VALUE, or KEY to take it from here)")
	fl.StringArrayVar(&f.envFiles, "env-file", nil, "read environment variables from a file")
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount a host directory: /host:/ctr[:ro]")
	fl.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs: /path[:options]")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory in the container")
	fl.StringVarP(&f.user, "user", "u", "", "user (name|uid[:group|gid])")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "override the image's entrypoint")
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit (e.g. 64m, 1g)")
	fl.Float64Var(&f.cpus, "cpus", 0, "number of CPUs")
	fl.Int64Var(&f.pidsLimit, "pids-limit", 0, "maximum number of processes")
	fl.StringArrayVar(&f.capAdd, "cap-add", nil, "add a capability")
	fl.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop a capability")
	fl.BoolVar(&f.readOnly, "read-only", false, "mount the root filesystem read-only")
	fl.BoolVar(&f.privileged, "privileged", false, "give every capability and device, no seccomp")
	fl.StringVar(&f.network, "network", "none", "network: none or host")
	fl.BoolVar(&f.init, "init", false, "run gantry-init as PID 1: it forwards signals to the command and reaps zombies")
	fl.StringVar(&f.runtime, "runtime", "", "runc-compatible runtime binary (default gantry-oci)")
}

// parseMemory parses docker's memory strings: a number with an optional
// unit b, k, m or g (case-insensitive, an optional trailing "b").
func parseMemory(s string) (int64, error) {
	bad := fmt.Errorf("invalid --memory %q: want a positive number with an optional unit b, k, m or g (e.g. 64m)", s)
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return 0, bad
	}
	mult := int64(1)
	if len(t) > 1 && t[len(t)-1] == 'b' && strings.ContainsAny(t[len(t)-2:len(t)-1], "kmg") {
		t = t[:len(t)-1]
	}
	switch t[len(t)-1] {
	case 'b':
		t = t[:len(t)-1]
	case 'k':
		mult, t = 1<<10, t[:len(t)-1]
	case 'm':
		mult, t = 1<<20, t[:len(t)-1]
	case 'g':
		mult, t = 1<<30, t[:len(t)-1]
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f <= 0 || f*float64(mult) > 1<<62 {
		return 0, bad
	}
	return int64(f * float64(mult)), nil
}

// parseVolume parses /host:/ctr[:ro|rw]; the host path must be absolute
// and exist.
func parseVolume(v string) (*gantryv1.ContainerMount, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("invalid -v %q: want /host/path:/container/path[:ro]", v)
	}
	src, dst := parts[0], parts[1]
	if !filepath.IsAbs(src) {
		return nil, fmt.Errorf("invalid -v %q: host path %q is not absolute (named volumes are not supported)", v, src)
	}
	if _, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("invalid -v %q: host path %q does not exist", v, src)
	}
	if !filepath.IsAbs(dst) {
		return nil, fmt.Errorf("invalid -v %q: container path %q is not absolute", v, dst)
	}
	opts := []string{"rbind", "rw"}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
			// Read-only all the way down, as docker 25 makes it: the
			// mounts below the host path too ("rro", Linux 5.12).
			opts = []string{"rbind", "ro", "rro"}
		case "rw":
		default:
			return nil, fmt.Errorf("invalid -v %q: mode %q: want ro or rw", v, parts[2])
		}
	}
	return &gantryv1.ContainerMount{Type: "bind", Source: src, Destination: dst, Options: opts}, nil
}

func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, expandEnv(line))
	}
	return out, sc.Err()
}

// expandEnv turns "KEY" into "KEY=value" from this environment (or drops
// nothing: an unset KEY stays as KEY, which removes it in the container).
func expandEnv(e string) string {
	if strings.Contains(e, "=") {
		return e
	}
	if v, ok := os.LookupEnv(e); ok {
		return e + "=" + v
	}
	return e
}

// request builds the create request; errors are usage errors (exit 125).
func (f *containerFlags) request(cmd *cobra.Command, argv []string) (*gantryv1.CreateContainerRequest, error) {
	o := &gantryv1.ContainerOptions{
		User: f.user, Cwd: f.workdir, Tty: f.tty, Stdin: f.interactive, ReadOnly: f.readOnly,
		Privileged: f.privileged, CapAdd: f.capAdd, CapDrop: f.capDrop, Cpus: f.cpus,
		PidsLimit: f.pidsLimit, Network: f.network, Tmpfs: f.tmpfs, Init: f.init,
	}
	if f.network != "none" && f.network != "host" {
		return nil, usageError{fmt.Errorf("invalid --network %q: want none or host", f.network)}
	}
	if f.memory != "" {
		m, err := parseMemory(f.memory)
		if err != nil {
			return nil, usageError{err}
		}
		o.Memory = m
	}
	if f.cpus < 0 {
		return nil, usageError{fmt.Errorf("invalid --cpus %v: want a positive number", f.cpus)}
	}
	for _, path := range f.envFiles {
		env, err := readEnvFile(path)
		if err != nil {
			return nil, usageError{err}
		}
		o.Env = append(o.Env, env...)
	}
	for _, e := range f.env {
		o.Env = append(o.Env, expandEnv(e))
	}
	for _, v := range f.volumes {
		m, err := parseVolume(v)
		if err != nil {
			return nil, usageError{err}
		}
		o.Mounts = append(o.Mounts, m)
	}
	if cmd.Flags().Changed("entrypoint") {
		o.EntrypointSet = true
		if f.entrypoint != "" {
			o.Entrypoint = []string{f.entrypoint}
		}
	}
	if len(argv) > 1 {
		o.Args, o.ArgsSet = argv[1:], true
	}
	return &gantryv1.CreateContainerRequest{Name: f.name, Image: argv[0], Options: o, Runtime: f.runtime}, nil
}

func newCreateCommand(a *app) *cobra.Command {
	var f containerFlags
	cmd := &cobra.Command{
		Use:   "create [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Create a container without starting it",
		Args:  args(1, -1, "an image and an optional command"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			req, err := f.request(cmd, argv)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctr, err := c.CreateContainer(cmd.Context(), req)
			if err != nil {
				return gantryError(err)
			}
			fmt.Fprintln(a.stdio.Out, ctr.GetId())
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func newRunCommand(a *app) *cobra.Command {
	var f containerFlags
	var detach, rm, sigProxy bool
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Create and start a container",
		Args:  args(1, -1, "an image and an optional command"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			req, err := f.request(cmd, argv)
			if err != nil {
				return err
			}
			if rm {
				if req.Labels == nil {
					req.Labels = map[string]string{}
				}
				// In the foreground this CLI removes it once it has all
				// the output; detached, gantryd removes it when it exits.
				req.Labels[client.LabelAutoRemove] = client.AutoRemoveClient
				if detach {
					req.Labels[client.LabelAutoRemove] = client.AutoRemoveDetached
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			// One call creates the container and starts its task (one
			// runtime process); a foreground run has its output held until
			// it attaches. A task that fails takes the container with it.
			ctr, st, err := c.RunContainer(ctx, req, !detach)
			if err != nil {
				return gantryError(err)
			}
			id := ctr.GetId()
			if st == nil {
				// A gantryd without CreateContainerRequest.task.
				if st, err = c.RunTask(ctx, id, !detach); err != nil {
					// Nothing is left behind by a container that could not be created.
					c.DeleteContainer(context.WithoutCancel(ctx), id, true, false)
					return gantryError(err)
				}
			}
			var start func() error // nil: started
			if st.GetStatus() == "created" {
				// A gantryd that only creates: start it after attaching.
				start = func() error {
					_, err := c.StartTask(ctx, id)
					return err
				}
			}
			if detach {
				if start != nil {
					if err := start(); err != nil {
						return gantryError(err)
					}
				}
				fmt.Fprintln(a.stdio.Out, id)
				return nil
			}
			if sigProxy && !f.tty {
				// Signals to the CLI go to the container (docker's
				// --sig-proxy), which decides when the run ends; with a
				// terminal, its keys reach the container through the pty.
				stop := proxySignals(func(sig syscall.Signal) {
					// A container that has just exited refuses it: nothing to do.
					c.Kill(context.WithoutCancel(ctx), id, "", sig, false)
				})
				defer stop()
				ctx = context.WithoutCancel(ctx)
			}
			code, err := a.runAttached(ctx, c, id, "", f.interactive, f.tty, start,
				func(ctx context.Context) (*gantryv1.TaskState, error) { return c.Wait(ctx, id, "") })
			if rm {
				if _, derr := c.DeleteContainer(context.WithoutCancel(ctx), id, true, false); derr != nil && err == nil {
					err = derr
				}
			}
			if err != nil {
				return gantryError(err)
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "run in the background and print the container's id")
	cmd.Flags().BoolVar(&rm, "rm", false, "remove the container when it exits")
	cmd.Flags().BoolVar(&sigProxy, "sig-proxy", true, "pass the signals gantry receives (INT, TERM, HUP, QUIT, USR1, USR2, ALRM) to the container; not with -t")
	return cmd
}

// runAttached streams the container's (or exec's) live output, feeds
// stdin when interactive and returns the exit status from wait. A
// container is started once the stream is attached; an exec is started
// first (the shim holds its output until the stream attaches), and a nil
// start means a container already started with its output held (RunTask).
// The wait is in flight from the start on, so the exit is known as soon as
// the shim reports it, not one more round trip after the output ends; the
// status is returned only once the whole output has been written.
func (a *app) runAttached(ctx context.Context, c *client.Client, ref, execID string, interactive, tty bool,
	start func() error, wait func(context.Context) (*gantryv1.TaskState, error)) (int, error) {
	type waited struct {
		st  *gantryv1.TaskState
		err error
	}
	waitDone := make(chan waited, 1)
	wctx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	startWait := func() {
		go func() {
			st, err := wait(wctx)
			waitDone <- waited{st, err}
		}()
	}
	startFirst := execID != "" || start == nil
	if startFirst {
		if start != nil {
			if err := start(); err != nil {
				return 0, err
			}
		}
		startWait()
	}
	ready := make(chan struct{})
	logsDone := make(chan error, 1)
	lctx, cancelLogs := context.WithCancel(ctx)
	defer cancelLogs()
	go func() {
		var once sync.Once
		logsDone <- c.Logs(lctx, ref, client.LogsOptions{Live: true, ExecID: execID, Ready: func() { once.Do(func() { close(ready) }) }},
			func(e *gantryv1.LogEntry) error {
				w := a.stdio.Out
				if e.GetStream() == "stderr" {
					w = a.stdio.Err
				}
				_, err := w.Write(e.GetData())
				return err
			})
		once.Do(func() { close(ready) })
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// A terminal in raw mode passes keys (Ctrl-C included) to the container.
	if tty && interactive {
		if f, ok := a.stdio.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			if old, err := term.MakeRaw(int(f.Fd())); err == nil {
				defer term.Restore(int(f.Fd()), old)
			}
		}
	}
	if !startFirst {
		// A created task can be waited for: the wait is answered when the
		// process started below exits.
		startWait()
		if err := start(); err != nil {
			return 0, err
		}
	}
	// The pty follows the client's terminal: its size now, and again
	// whenever the window changes, until the session ends.
	if tty {
		if fd, ok := a.terminalFd(); ok {
			stop := forwardResize(ctx, fd, func(ctx context.Context, w, h uint32) error {
				return c.ResizePty(ctx, ref, execID, w, h)
			})
			defer stop()
		}
	}
	if interactive {
		go func() {
			if err := c.Attach(ctx, ref, execID, a.stdio.In); err == nil {
				c.CloseStdin(ctx, ref, execID)
			}
		}()
	}
	lerr := <-logsDone
	w := <-waitDone
	st, err := w.st, w.err
	if err != nil {
		return 0, err
	}
	if lerr != nil && !errors.Is(lerr, context.Canceled) {
		fmt.Fprintln(a.stdio.Err, "gantry: reading the output:", lerr)
	}
	if st.GetExitUnknown() {
		return 0, exitError{ExitUsage, fmt.Errorf("%s: the exit status is unknown (its shim died)", ref)}
	}
	return int(st.GetExitStatus()), nil
}
