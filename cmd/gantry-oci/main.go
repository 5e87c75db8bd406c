// Command gantry-oci is Gantry's OCI runtime, command-line compatible with
// runc.
package main

import (
	"os"

	"github.com/gantry-project/gantry/internal/oci/cli"
	// The C bootstrap must run before the Go runtime starts threads.
	_ "github.com/gantry-project/gantry/internal/oci/nsexec"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
