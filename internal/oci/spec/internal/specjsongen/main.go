// Command specjsongen writes internal/oci/spec/specjson_gen.go, the
// reflection-free decoder and encoder of runtime-spec configs (see package
// gen for why and for what it refuses). Run it with `go generate
// ./internal/oci/spec/`. It exits non-zero, writing nothing, when specs.Spec
// holds a field it cannot decode or encode with certainty.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gantry-project/gantry/internal/oci/spec/internal/specjsongen/gen"
)

func main() {
	out := flag.String("o", "specjson_gen.go", "file to write")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintf(os.Stderr, "specjsongen: %v\n", err)
		os.Exit(1)
	}
}

func run(out string) error {
	src, err := gen.Spec()
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, src, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}
