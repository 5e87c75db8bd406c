// Command gantry is Gantry's command line; every command talks to gantryd
// through client/. main only runs internal/cli and exits with its code.
package main

import (
	"os"

	"github.com/gantry-project/gantry/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
