package spec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func writeConfig(t *testing.T, bundle, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func exampleJSON(t *testing.T) string {
	t.Helper()
	b, err := json.MarshalIndent(Example(), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name    string
		config  string // "" means no config.json
		rootfs  bool
		want    string // prefix of the error; "" means success
		kind    error
		contain string
	}{
		{name: "example", config: "example", rootfs: true},
		{name: "unknown properties ignored", config: `{"ociVersion":"1.0.0","root":{"path":"rootfs","frobnicate":1},"process":{"args":["sh"],"cwd":"/"},"vendorExtension":{"a":[1,2]}}`, rootfs: true},
		{name: "no config.json", rootfs: true, want: "config.json: ", kind: errdefs.ErrNotFound, contain: "does not exist"},
		{name: "rootfs missing", config: "example", want: "config.json: root.path: ", kind: errdefs.ErrNotFound, contain: "rootfs\" does not exist"},
		{name: "syntax error", config: "{\n  \"ociVersion\": \"1.0.0\",\n  \"root\" {}\n}", rootfs: true,
			want: "config.json: invalid JSON at line 3, column 10: ", kind: errdefs.ErrInvalidArgument},
		{name: "truncated", config: `{"ociVersion": "1.0.0"`, rootfs: true, want: "config.json: invalid JSON", kind: errdefs.ErrInvalidArgument},
		{name: "empty file", config: " ", rootfs: true, want: "config.json: invalid JSON", kind: errdefs.ErrInvalidArgument},
		{name: "type error", config: "{\"ociVersion\":\"1.0.0\",\n\"process\":{\"args\":[1]}}", rootfs: true,
			want: "config.json: process.args", kind: errdefs.ErrInvalidArgument, contain: "at line 2"},
		{name: "not an object", config: "[]", rootfs: true, want: "config.json: the config must be a JSON object", kind: errdefs.ErrInvalidArgument},
		{name: "null", config: "null", rootfs: true, want: "config.json: ociVersion: required", kind: errdefs.ErrInvalidArgument},
		{name: "major version", config: `{"ociVersion":"2.0.0","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"}}`, rootfs: true,
			want: "config.json: ociVersion: unsupported major version 2 (want 1.x)", kind: errdefs.ErrInvalidArgument},
		{name: "rlimit", config: `{"ociVersion":"1.0.0","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/","rlimits":[{"type":"RLIMIT_CORE","hard":1,"soft":1},{"type":"RLIMIT_FOO","hard":1,"soft":1}]}}`, rootfs: true,
			want: "config.json: process.rlimits[1].type: ", kind: errdefs.ErrInvalidArgument, contain: "RLIMIT_FOO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle := t.TempDir()
			if tc.rootfs {
				if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			switch tc.config {
			case "":
			case "example":
				writeConfig(t, bundle, exampleJSON(t))
			default:
				writeConfig(t, bundle, tc.config)
			}
			s, err := Load(bundle)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if s == nil || s.Process == nil || s.Root == nil {
					t.Fatalf("Load returned an incomplete spec: %+v", s)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load: no error, want %q", tc.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tc.want) {
				t.Errorf("error %q does not start with %q", msg, tc.want)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q spans several lines", msg)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %q is not of kind %v", msg, tc.kind)
			}
			if tc.contain != "" && !strings.Contains(msg, tc.contain) {
				t.Errorf("error %q does not mention %q", msg, tc.contain)
			}
		})
	}
}

func TestLoadRelativeBundle(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "b")
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, bundle, exampleJSON(t))
	t.Chdir(dir)
	if _, err := Load("b"); err != nil {
		t.Fatalf("Load(relative bundle): %v", err)
	}
}

func TestPosition(t *testing.T) {
	data := []byte("ab\ncd\n\nx")
	for _, tc := range []struct {
		off       int64
		line, col int
	}{
		{0, 1, 1}, {1, 1, 1}, {3, 1, 3}, {4, 2, 1}, {6, 2, 3}, {8, 4, 1}, {100, 4, 2},
	} {
		if l, c := position(data, tc.off); l != tc.line || c != tc.col {
			t.Errorf("position(%d) = %d:%d, want %d:%d", tc.off, l, c, tc.line, tc.col)
		}
	}
}
