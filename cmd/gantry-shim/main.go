// Command gantry-shim is the per-container monitor that gantryd starts:
// `gantry-shim start FLAGS` detaches a shim, waits until it created the
// container and prints its socket; `serve` is the shim itself. It uses the
// standard flag package rather than the project's CLI library to keep the
// resident shim small (see docs/design/shim.md).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/gantry-project/gantry/internal/shim"
)

const usage = `usage: gantry-shim start|serve FLAGS
  start   detach a shim for a container, print its socket once created
  serve   run the shim in the foreground (reports readiness on fd 3)
`

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "start" && os.Args[1] != "serve") {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	verb, args := os.Args[1], os.Args[2:]
	var o shim.Options
	fs := flag.NewFlagSet("gantry-shim "+verb, flag.ExitOnError)
	fs.StringVar(&o.Namespace, "namespace", "", "the container's namespace")
	fs.StringVar(&o.ID, "id", "", "the container id")
	fs.StringVar(&o.StateDir, "state-dir", "", "the shim's state directory (<state>/shims/<namespace>/<id>)")
	fs.StringVar(&o.Bundle, "bundle", "", "the bundle directory")
	fs.StringVar(&o.Runtime, "runtime", "gantry-oci", "the runc-compatible runtime binary")
	fs.StringVar(&o.RuntimeRoot, "runtime-root", "", "the runtime's --root")
	fs.StringVar(&o.LogPath, "log-path", "", "the container's log file (JSON lines)")
	fs.Int64Var(&o.LogMaxSize, "log-max-size", 0, "rotate the log past this many bytes (default 10 MiB)")
	fs.IntVar(&o.LogMaxFiles, "log-max-files", 0, "log files kept, the current one included (default 3)")
	fs.BoolVar(&o.Stdin, "stdin", false, "keep the container's stdin open for Attach")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "bound on each runtime call")
	fs.BoolVar(&o.NoPivot, "no-pivot", false, "pass --no-pivot to the runtime's create")
	fs.BoolVar(&o.DeleteOnExit, "delete-on-exit", false, "run the runtime's delete as soon as the container exits (it is removed on exit)")
	fs.BoolVar(&o.Start, "start", false, "create and start the container in one runtime call (run --detach)")
	fs.BoolVar(&o.HoldOutput, "hold-output", false, "with --start: hold the output for the first attacher")
	fs.Parse(args)

	var err error
	if verb == "start" {
		err = shim.Detach(o, args)
	} else {
		err = shim.Serve(o, os.NewFile(3, "ready"))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gantry-shim %s: %v\n", verb, err)
		os.Exit(1)
	}
}
