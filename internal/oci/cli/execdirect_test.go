package cli

import (
	"context"
	"reflect"
	"testing"

	"github.com/gantry-project/gantry/internal/oci/container"
)

// TestDirectExecMatchesCobra: every exec command line that directExec
// takes, it reads as cobra's exec command does (globals and options);
// the others it leaves to cobra.
func TestDirectExecMatchesCobra(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		direct bool
	}{
		{[]string{"exec", "c1", "/bin/true"}, true},
		{[]string{"--root", "/r", "exec", "c1", "/bin/true"}, true},
		{[]string{"--root=/r", "--log", "/l", "--log-format", "json", "--debug", "exec", "c1"}, true},
		{[]string{"--log=/l", "--log-format=text", "exec", "c1", "sh", "-c", "x"}, true},
		{[]string{"--root", "exec", "exec", "c1"}, true},
		{[]string{"exec", "--process", "/p.json", "--detach", "--pid-file", "/pid", "c1"}, true},
		{[]string{"exec", "-p", "-", "-d", "c1"}, true},
		{[]string{"exec", "-t", "--console-socket", "/s", "--cwd=/tmp", "c1", "sh"}, true},
		{[]string{"exec", "-e", "A=1", "--env", "B=2,3", "--env=C=", "-u", "1:2", "c1", "env"}, true},
		{[]string{"exec", "--user=0", "--no-new-privs", "--ignore-paused", "--cgroup", "cpu:sub", "c1", "x"}, true},
		{[]string{"exec", "--preserve-fds", "2", "c1", "x"}, true},
		{[]string{"exec", "--preserve-fds=0x3", "c1", "x"}, true},
		{[]string{"exec", "c1", "--tty", "-d"}, true}, // flags after the id belong to the command
		{[]string{"exec", "", "x"}, true},
		{[]string{"exec", "--cwd", "-d", "c1"}, true}, // a value that looks like a flag

		// Left to cobra.
		{[]string{"exec"}, false},
		{[]string{"exec", "-d"}, false},
		{[]string{"exec", "--help"}, false},
		{[]string{"exec", "-h", "c1"}, false},
		{[]string{"--version"}, false},
		{[]string{"--systemd-cgroup", "exec", "c1"}, false},
		{[]string{"--rootless", "exec", "c1"}, false},
		{[]string{"--log-format", "xml", "exec", "c1"}, false},
		{[]string{"--root"}, false},
		{[]string{"exec", "-dt", "c1"}, false},
		{[]string{"exec", "-eA=1", "c1"}, false},
		{[]string{"exec", "--detach=true", "c1"}, false},
		{[]string{"exec", "--preserve-fds", "x", "c1"}, false},
		{[]string{"exec", "--cap", "CAP_KILL", "c1"}, false},
		{[]string{"exec", "-g", "1,2", "c1"}, false},
		{[]string{"exec", "--", "c1"}, false},
		{[]string{"exec", "--unknown", "c1"}, false},
		{[]string{"exec", "--pid-file"}, false},
		{[]string{"state", "c1"}, false},
		{[]string{"exec", "c1", "--root", "/r"}, true},
	} {
		g, o, ok := directExec(tc.args)
		if ok != tc.direct {
			t.Errorf("directExec(%q): %v, want %v", tc.args, ok, tc.direct)
			continue
		}
		if !ok {
			continue
		}
		var cg *globals
		var co container.ExecOptions
		execRunner = func(_ context.Context, g *globals, o container.ExecOptions) error {
			cg, co = g, o
			return nil
		}
		root := newRoot(&globals{})
		root.SetArgs(tc.args)
		err := root.Execute()
		execRunner = runExec
		if err != nil {
			t.Errorf("cobra refuses %q, which directExec takes: %v", tc.args, err)
			continue
		}
		if cg == nil {
			t.Errorf("cobra did not run exec for %q", tc.args)
			continue
		}
		if !reflect.DeepEqual(*g, *cg) {
			t.Errorf("%q: globals %+v, cobra's %+v", tc.args, *g, *cg)
		}
		if !reflect.DeepEqual(*o, co) {
			t.Errorf("%q: options %+v, cobra's %+v", tc.args, *o, co)
		}
	}
}
