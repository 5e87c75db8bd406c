package cli

import (
	"strings"
	"testing"
)

func TestCompletion(t *testing.T) {
	tests := []struct {
		shell string
		want  []string // substrings the script must contain
	}{
		{"bash", []string{"# bash completion V2 for gantry", "__start_gantry", "complete -o default -F __start_gantry gantry", "__complete"}},
		{"zsh", []string{"#compdef gantry", "__complete"}},
		{"fish", []string{"complete -c gantry", "__complete"}},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			code, stdout, stderr := run(t, "completion", tt.shell)
			if code != ExitOK {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("%s script lacks %q", tt.shell, w)
				}
			}
		})
	}
}

// TestCompletionCommands checks that the dynamic completion the scripts
// call offers gantry's commands.
func TestCompletionCommands(t *testing.T) {
	code, stdout, stderr := run(t, "__complete", "")
	if code != ExitOK {
		t.Fatalf("__complete: exit %d, stderr %q", code, stderr)
	}
	for _, c := range []string{"run", "ps", "logs", "exec", "rm", "images", "completion"} {
		if !strings.Contains(stdout, "\n"+c+"\t") && !strings.HasPrefix(stdout, c+"\t") {
			t.Errorf("__complete does not offer %q:\n%s", c, stdout)
		}
	}
	code, stdout, _ = run(t, "__complete", "completion", "")
	if code != ExitOK || !strings.Contains(stdout, "bash") || !strings.Contains(stdout, "fish") {
		t.Errorf("__complete completion: exit %d, output %q, want the shells", code, stdout)
	}
}

func TestCompletionBadShell(t *testing.T) {
	for _, argv := range [][]string{{"completion", "tcsh"}, {"completion"}, {"completion", "bash", "zsh"}} {
		code, stdout, stderr := run(t, argv...)
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", argv, code, ExitUsage, stderr)
		}
		if stdout != "" {
			t.Errorf("%v: wrote a script: %q", argv, stdout)
		}
	}
}
