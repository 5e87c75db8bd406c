package daemon

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gantryd.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string // substring; "" means success
		check   func(t *testing.T, c Config)
	}{
		{name: "empty gives defaults", body: "", check: func(t *testing.T, c Config) {
			if c.Root != DefaultRoot || c.Address != DefaultAddress || c.Snapshotter != SnapshotterOverlay || c.Registry.MaxConcurrentDownloads != DefaultMaxDownloads {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "values", body: "root = \"/r\"\nsnapshotter = \"native\"\n[registry]\ninsecure = [\"reg:5000\"]\nmax_concurrent_downloads = 8\n", check: func(t *testing.T, c Config) {
			if c.Root != "/r" || c.Snapshotter != SnapshotterNative || c.Registry.Insecure[0] != "reg:5000" || c.Registry.MaxConcurrentDownloads != 8 {
				t.Errorf("config: %+v", c)
			}
		}},
		{name: "unknown top-level key", body: "roots = \"/r\"\n", wantErr: `unknown key "roots"`},
		{name: "unknown nested key", body: "[registry]\nmirrors = []\n", wantErr: `unknown key "registry.mirrors"`},
		{name: "syntax error", body: "root = \n", wantErr: "gantryd.toml"},
		{name: "wrong type", body: "snapshotter_fallback = \"yes\"\n", wantErr: "snapshotter_fallback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(writeConfig(t, tt.body), false)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want an invalid-argument error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadConfigMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.toml")
	if _, err := LoadConfig(missing, false); err == nil {
		t.Error("a missing --config file must be an error")
	}
	c, err := LoadConfig(missing, true)
	if err != nil || c.Root != DefaultRoot {
		t.Errorf("missing default file: %+v, %v; want the defaults", c, err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"unix prefix", func(c *Config) { c.Address = "unix:///tmp/g.sock" }, ""},
		{"bad snapshotter", func(c *Config) { c.Snapshotter = "zfs" }, `snapshotter "zfs"`},
		{"bad log level", func(c *Config) { c.LogLevel = "loud" }, `log_level "loud"`},
		{"zero downloads", func(c *Config) { c.Registry.MaxConcurrentDownloads = 0 }, "registry.max_concurrent_downloads 0"},
		{"insecure with scheme", func(c *Config) { c.Registry.Insecure = []string{"http://x"} }, `registry.insecure[0] "http://x"`},
		{"root equals state", func(c *Config) { c.State = c.Root }, "root and state"},
		{"empty root", func(c *Config) { c.Root = "" }, "root: empty"},
		{"missing ca", func(c *Config) { c.Registry.CAFile = "/nonexistent/ca.pem" }, "registry.ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !filepath.IsAbs(c.Address) || strings.HasPrefix(c.Address, "unix:") {
					t.Errorf("address %q not made a path", c.Address)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestResolveConfigFlagsWin(t *testing.T) {
	p := writeConfig(t, "root = \"/from/file\"\nstate = \"/state/file\"\nlog_level = \"debug\"\n")
	c, err := ResolveConfig(Options{ConfigPath: p, Root: "/from/flag"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Root != "/from/flag" || c.State != "/state/file" || c.LogLevel != "debug" {
		t.Errorf("config %+v: want the flag's root over the file's, the file's state and level", c)
	}
}

func TestLockRoot(t *testing.T) {
	root := t.TempDir()
	f, err := lockRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockRoot(root)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "in use by another gantryd") {
		t.Fatalf("second lock: err = %v, want in use", err)
	}
	f.Close()
	f2, err := lockRoot(root)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	f2.Close()
}

func TestListen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "gantry")
	path := filepath.Join(dir, "gantryd.sock")
	l, err := listen(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o660 || st.Mode().Type() != os.ModeSocket {
		t.Errorf("socket mode = %v, %v; want a 0660 socket", st.Mode(), err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o711 {
		t.Errorf("socket directory mode = %v, want 0711", st.Mode().Perm())
	}
	if _, err := listen(path, nil); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("second listen on a live socket: err = %v, want failed precondition", err)
	}

	// A socket left behind by a dead daemon is replaced.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket should still exist for this test: %v", err)
	}
	l2, err := listen(path, nil)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	l2.Close()

	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, nil, 0o600)
	if _, err := listen(regular, nil); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listen on a regular file: err = %v, want not a socket", err)
	}
}

func TestValidateTimeoutsAndCgroupParent(t *testing.T) {
	for _, tc := range []struct {
		name           string
		runtime, shim  string
		parent         string
		wantErr        string
		wantRT, wantSh string
		wantParent     string
	}{
		{name: "defaults", wantParent: DefaultCgroupParent},
		{name: "set", runtime: "2s", shim: "1m", parent: "/gantry-test/x", wantRT: "2s", wantSh: "1m0s", wantParent: "/gantry-test/x"},
		{name: "bad runtime", runtime: "soon", wantErr: "runtime_timeout"},
		{name: "negative shim", shim: "-1s", wantErr: "shim_timeout"},
		{name: "relative parent", parent: "gantry", wantErr: "cgroup_parent"},
		{name: "unclean parent", parent: "/a/../b", wantErr: "cgroup_parent"},
		{name: "root parent", parent: "/", wantErr: "cgroup_parent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.RuntimeTimeout, c.ShimTimeout, c.CgroupParent = tc.runtime, tc.shim, tc.parent
			err := c.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want an invalid-argument error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rt, sh, _ := c.Timeouts()
			if (tc.wantRT != "" && rt.String() != tc.wantRT) || (tc.wantSh != "" && sh.String() != tc.wantSh) || c.CgroupParent != tc.wantParent {
				t.Errorf("got runtime %v shim %v parent %q", rt, sh, c.CgroupParent)
			}
		})
	}
}
