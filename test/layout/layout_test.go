// Package layout checks the package boundaries of ../shared/STYLE.md
// section 3 with `go list -deps`: which binary may link what, who may
// import whom, and that cgo stays in gantry-oci.
package layout

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/gantry-project/gantry"

// deps lists the packages pkg depends on (itself included), with a
// marker for those that have cgo files.
func deps(t *testing.T, pkg string) (all map[string]bool, cgo map[string]bool) {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{if .CgoFiles}}cgo{{end}} {{.Standard}}", pkg)
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	all, cgo = map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		all[f[0]] = true
		if len(f) == 3 && f[1] == "cgo" && f[2] == "false" {
			cgo[f[0]] = true
		}
	}
	return all, cgo
}

// forbid fails for every dependency of pkg under one of the prefixes.
func forbid(t *testing.T, pkg string, all map[string]bool, prefixes ...string) {
	t.Helper()
	for d := range all {
		if d == pkg {
			continue
		}
		for _, p := range prefixes {
			if d == module+"/"+p || strings.HasPrefix(d, module+"/"+p+"/") {
				t.Errorf("%s depends on %s (forbidden: %s)", pkg, d, p)
			}
		}
	}
}

func TestBinariesDoNotLinkTheRuntime(t *testing.T) {
	// Processes are the architecture: gantryd, the shim and the CLI run
	// gantry-oci (or runc) as a binary, they never link it.
	for _, bin := range []string{"cmd/gantryd", "cmd/gantry", "cmd/gantry-shim"} {
		if _, err := os.Stat("../../" + bin); err != nil {
			continue // not built yet
		}
		all, cgo := deps(t, "./"+bin)
		if len(all) == 0 {
			continue
		}
		forbid(t, module+"/"+bin, all, "internal/oci")
		for p := range cgo {
			t.Errorf("%s links cgo package %s: cgo belongs to gantry-oci only", bin, p)
		}
	}
}

func TestRuntimeImportsNothingAbove(t *testing.T) {
	all, _ := deps(t, "./cmd/gantry-oci")
	forbid(t, module+"/cmd/gantry-oci", all,
		"api", "client", "internal/content", "internal/metadata", "internal/remote", "internal/image",
		"internal/archive", "internal/unpack", "internal/snapshot", "internal/specgen",
		"internal/daemon", "internal/services", "internal/cli", "internal/shim", "internal/ociclient")
}

func TestClientImportsOnlyTheAPI(t *testing.T) {
	all, _ := deps(t, "./client/...")
	// errdefs is the shared vocabulary of error kinds (a leaf package), so
	// that errors.Is works on both sides; nothing else of internal/.
	for d := range all {
		if strings.HasPrefix(d, module+"/internal/") && d != module+"/internal/errdefs" {
			t.Errorf("client depends on %s: it may import api/ (and internal/errdefs) only", d)
		}
	}
}

func TestOnlyGantrydImportsDaemon(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == module+"/cmd/gantryd" || f[0] == module+"/internal/daemon" {
			continue
		}
		for _, imp := range f[1:] {
			if imp == module+"/internal/daemon" {
				t.Errorf("%s imports internal/daemon: only cmd/gantryd (and tests) may", f[0])
			}
		}
	}
}

// TestNoOtherRuntimeModules: no module of another container runtime's
// implementation (the system this project builds) is in the build, not even
// indirectly (go-containerregistry's authn once pulled in docker/cli).
func TestNoOtherRuntimeModules(t *testing.T) {
	cmd := exec.Command("go", "list", "-m", "all")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/opencontainers/runc", "github.com/containerd/", "github.com/cri-o/",
		"github.com/containers/", "github.com/docker/", "github.com/moby/",
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		mod := f[0]
		for _, bad := range forbidden {
			if strings.HasPrefix(mod, bad) {
				t.Errorf("module %s is in the build: another runtime's implementation", mod)
			}
		}
	}
}
