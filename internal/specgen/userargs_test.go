package specgen

import (
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
)

// TestUserArgs: gantryv1.UserArgs of the command of a spec Generate built, with and without
// Options.Init, is the user's command; only Generate's own prefix goes.
func TestUserArgs(t *testing.T) {
	const initBin = "/usr/local/bin/gantry-init"
	for _, tt := range []struct {
		name string
		opts Options
		want []string
	}{
		{"init", Options{Init: initBin, Args: []string{"sleep", "1000"}}, []string{"sleep", "1000"}},
		{"init, command starting with --", Options{Init: initBin, Args: []string{"--", "-x"}}, []string{"--", "-x"}},
		{"init, command is the init path", Options{Init: initBin, Args: []string{InitPath, "--", "sh"}}, []string{InitPath, "--", "sh"}},
		{"no init", Options{Args: []string{"sleep", "1000"}}, []string{"sleep", "1000"}},
		{"no init, image's command", Options{}, []string{"sh"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			img := ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"sh"}}}
			spec, err := Generate(img, testRootfs, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := gantryv1.UserArgs(roundTrip(t, spec).Process.Args); !slices.Equal(got, tt.want) {
				t.Errorf("UserArgs(%q) = %q, want %q", spec.Process.Args, got, tt.want)
			}
		})
	}
	// Args that do not start with the init and its "--" are returned whole.
	for _, args := range [][]string{nil, {}, {InitPath}, {InitPath, "-x"}, {"sh", "--"}, {"/usr/sbin/gantry-init", "--", "sh"}} {
		if got := gantryv1.UserArgs(args); !slices.Equal(got, args) {
			t.Errorf("UserArgs(%q) = %q, want it unchanged", args, got)
		}
	}
}
