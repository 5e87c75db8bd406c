// Command mkbundle writes an OCI bundle for manual runs and benchmarks:
// DIR/rootfs (a copy of the test template rootfs) and DIR/config.json (the
// test base spec, with linux.cgroupsPath /gantry-test/ID). Arguments after
// DIR replace process.args.
//
//	go run ./test/bundle/cmd/mkbundle DIR [ARG...]
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/gantry-project/gantry/test/bundle"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mkbundle DIR [ARG...]")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "mkbundle: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string, args []string) error {
	tmpl, err := bundle.BuildRootfs()
	if err != nil {
		return err
	}
	rootfs := filepath.Join(dir, "rootfs")
	if _, err := os.Stat(rootfs); err == nil {
		return fmt.Errorf("create bundle %s: rootfs already exists", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create bundle %s: %w", dir, err)
	}
	if out, err := exec.Command("cp", "-a", tmpl, rootfs).CombinedOutput(); err != nil {
		return fmt.Errorf("copy template rootfs %s: %w: %s", tmpl, err, out)
	}
	id := bundle.NewID(filepath.Base(dir))
	s := bundle.BaseSpec(id)
	// Not this short-lived process's parent: one fixed parent, which
	// scripts/bench.sh removes when it ends.
	s.Linux.CgroupsPath = "/gantry-test/" + id
	if len(args) > 0 {
		s.Process.Args = args
	}
	return bundle.WriteSpec(filepath.Join(dir, "config.json"), s)
}
