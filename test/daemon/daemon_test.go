package daemon

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDaemonNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nobody.sock")
	_, stderr, code := runGantry(t, "--address", sock, "images")
	if code != 1 {
		t.Errorf("exit code %d, want 1 (docker's for an unreachable daemon)", code)
	}
	line := strings.TrimSpace(stderr)
	if strings.Contains(line, "\n") || !strings.Contains(line, sock) || !strings.Contains(line, "gantryd &") || !strings.Contains(line, "systemctl start gantryd") {
		t.Errorf("stderr %q: want one line naming the socket and how to start gantryd", stderr)
	}
}

// runDaemonExpectFailure runs gantryd and expects it to exit non-zero on
// its own, returning its output.
func runDaemonExpectFailure(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "gantryd"), args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("gantryd %v kept running; want it to refuse to start\n%s", args, out)
	}
	if err == nil {
		t.Fatalf("gantryd %v exited 0; want a failure\n%s", args, out)
	}
	return string(out)
}

func TestBadConfigRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(e *daemonEnv)
		want  []string
	}{
		{"unknown key", func(e *daemonEnv) { e.writeConfig(`snapshoter = "native"`) }, []string{`unknown key "snapshoter"`, e2eConfigName}},
		{"bad snapshotter", func(e *daemonEnv) { e.writeConfig(`snapshotter = "zfs"`) }, []string{`snapshotter "zfs"`}},
		{"bad mirror", func(e *daemonEnv) {
			dir := filepath.Join(e.dir, "etc", "hosts.d", "registry.example")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			body := "server = \"https://registry.example\"\n[host.\"ftp://mirror.example\"]\ncapabilities = [\"pull\"]\n"
			if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"hosts.toml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.setup(e)
			out := runDaemonExpectFailure(t, e.daemonArgs()...)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("gantryd output %q lacks %q", out, w)
				}
			}
			if _, err := os.Stat(e.sock); err == nil {
				t.Errorf("a refused start left the socket %s", e.sock)
			}
		})
	}
}

const e2eConfigName = "gantryd.toml"

func TestSecondDaemonOnOneRootRefused(t *testing.T) {
	e := newEnv(t)
	e.start()
	args := []string{"--root", e.root, "--state", filepath.Join(e.dir, "state2"), "--address", filepath.Join(e.dir, "other.sock"), "--config", e.config}
	out := runDaemonExpectFailure(t, args...)
	if !strings.Contains(out, "in use by another gantryd") {
		t.Errorf("second gantryd said %q, want that the root is in use", out)
	}
	// The first one still serves.
	e.mustGantry("version")
	st, err := os.Stat(e.sock)
	if err != nil || st.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, %v; want 0660", st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Dir(e.sock)); err != nil || st.Mode().Perm() != 0o711 {
		t.Errorf("socket directory mode %v, %v; want 0711", st.Mode(), err)
	}
}
