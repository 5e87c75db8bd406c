package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, argv ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), argv, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}, nil)
	return code, out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gantryd.sock")
	tests := []struct {
		name     string
		argv     []string
		code     int
		inStderr string
	}{
		{"unknown flag", []string{"images", "--bogus"}, ExitUsage, "unknown flag: --bogus"},
		{"missing argument", []string{"--address", sock, "pull"}, ExitUsage, "wants one image reference"},
		{"too many arguments", []string{"--address", sock, "tag", "a", "b", "c"}, ExitUsage, "wants SOURCE and TARGET"},
		{"bad format", []string{"--address", sock, "images", "--format", "xml"}, ExitUsage, `--format "xml"`},
		{"daemon not running", []string{"--address", sock, "images"}, ExitError, "is gantryd running? Start it with 'gantryd &'"},
		{"unknown command", []string{"frobnicate"}, ExitUsage, `unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.argv...)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, tt.inStderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.inStderr)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("stderr %q is more than one line", stderr)
			}
		})
	}
}

func TestGlobalFlagsFromEnvironment(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "from-env.sock")
	t.Setenv(EnvAddress, sock)
	t.Setenv(EnvNamespace, "tenant")
	_, _, stderr := run(t, "images")
	if !strings.Contains(stderr, sock) {
		t.Errorf("stderr %q should name the address from %s", stderr, EnvAddress)
	}
}
