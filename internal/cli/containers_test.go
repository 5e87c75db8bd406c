package cli

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
)

// TestContainerCommand: ps and inspect's summary show the user's command,
// without the init of --init; inspect's spec keeps the real args.
func TestContainerCommand(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"init", []string{gantryv1.InitPath, "--", "sleep", "1000"}, "sleep 1000"},
		{"no init", []string{"sleep", "1000"}, "sleep 1000"},
		{"no process", nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sp := specs.Spec{Version: specs.Version}
			if tt.args != nil {
				sp.Process = &specs.Process{Args: tt.args}
			}
			raw, err := json.Marshal(sp)
			if err != nil {
				t.Fatal(err)
			}
			ctr := &gantryv1.Container{Id: "abc", Spec: raw, Status: "running"}
			if got := containerCommand(ctr); got != tt.want {
				t.Errorf("containerCommand = %q, want %q", got, tt.want)
			}
			if got := toContainerJSON(ctr).Command; got != tt.want {
				t.Errorf("containerJSON.Command = %q, want %q", got, tt.want)
			}
		})
	}
}
