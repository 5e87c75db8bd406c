package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/gantry-project/gantry/test/bundle"
)

// Build builds each named binary into dir: "gantry-init" from its C
// source with $CC (default cc), static as `make build` builds it; any other
// name from ./cmd/<name>, with cgo only for gantry-oci (libseccomp).
func Build(dir string, names ...string) error {
	root, err := bundle.RepoRoot()
	if err != nil {
		return err
	}
	for _, name := range names {
		var cmd *exec.Cmd
		switch name {
		case "gantry-init":
			cc := os.Getenv("CC")
			if cc == "" {
				cc = "cc"
			}
			cmd = exec.Command(cc, "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", filepath.Join(dir, name),
				filepath.Join(root, "cmd", name, name+".c"))
		default:
			cmd = exec.Command("go", "build", "-o", filepath.Join(dir, name), "./cmd/"+name)
			cgo := "CGO_ENABLED=0"
			if name == "gantry-oci" {
				cgo = "CGO_ENABLED=1"
			}
			cmd.Env = append(os.Environ(), cgo)
		}
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", name, err, out)
		}
	}
	return nil
}
