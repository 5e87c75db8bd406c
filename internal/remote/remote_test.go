package remote

import (
	"encoding/base64"

	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func TestParseReference(t *testing.T) {
	const d = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
	for _, tc := range []struct {
		in, want string
		tag      string
		err      bool
	}{
		{in: "busybox", want: "docker.io/library/busybox:latest", tag: "latest"},
		{in: "busybox:1.36", want: "docker.io/library/busybox:1.36", tag: "1.36"},
		{in: "docker.io/library/busybox", want: "docker.io/library/busybox:latest", tag: "latest"},
		{in: "index.docker.io/foo/bar:x", want: "docker.io/foo/bar:x", tag: "x"},
		{in: "registry.k8s.io/pause:3.10", want: "registry.k8s.io/pause:3.10", tag: "3.10"},
		{in: "127.0.0.1:5000/a/b/c", want: "127.0.0.1:5000/a/b/c:latest", tag: "latest"},
		{in: "localhost:5000/x@" + d, want: "localhost:5000/x@" + d},
		{in: "localhost:5000/x:v1@" + d, want: "localhost:5000/x:v1@" + d, tag: "v1"},
		{in: "UPPER/case", err: true},
		{in: "x@sha256:short", err: true},
		{in: "", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := ParseReference(tc.in)
			if tc.err {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("ParseReference(%q) = %v, %v; want ErrInvalidArgument", tc.in, r, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.String() != tc.want || r.Tag != tc.tag {
				t.Fatalf("ParseReference(%q) = %q tag %q, want %q tag %q", tc.in, r, r.Tag, tc.want, tc.tag)
			}
		})
	}
}

func TestSelectPlatform(t *testing.T) {
	mk := func(os, arch, variant string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest("sha256:" + strings.Repeat("a", 64)), Platform: &ocispec.Platform{OS: os, Architecture: arch, Variant: variant}, Annotations: map[string]string{"p": os + arch + variant}}
	}
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{
		mk("unknown", "unknown", ""), mk("linux", "amd64", ""), mk("linux", "arm64", ""), mk("linux", "arm", "v6"), mk("linux", "arm", "v7"),
	}}
	for _, tc := range []struct {
		want ocispec.Platform
		got  string
	}{
		{ocispec.Platform{OS: "linux", Architecture: "amd64"}, "linuxamd64"},
		{ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, "linuxarm64"},
		{ocispec.Platform{OS: "linux", Architecture: "arm"}, "linuxarmv7"},
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}, "linuxarmv6"},
		{ocispec.Platform{OS: "linux", Architecture: "s390x"}, ""},
		{ocispec.Platform{OS: "windows", Architecture: "amd64"}, ""},
	} {
		d, err := SelectPlatform(idx, tc.want)
		if tc.got == "" {
			if !errdefs.IsNotFound(err) {
				t.Errorf("%v: got %v, %v; want ErrNotFound", tc.want, d.Annotations, err)
			}
			continue
		}
		if err != nil || d.Annotations["p"] != tc.got {
			t.Errorf("%v: got %v, %v; want %s", tc.want, d.Annotations, err, tc.got)
		}
	}
}

func TestParseHostConfig(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, data string
		errKey     string // "" = valid
		mirrors    []string
		server     string
	}{
		{name: "mirrors in order", data: `
server = "https://registry.k8s.io"
[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
[host."https://b.example.com/v2"]
  capabilities = ["pull"]
  ca = "` + ca + `"
[host."https://a.example.com"]
`, mirrors: []string{"http://127.0.0.1:5000", "https://b.example.com", "https://a.example.com"}, server: "https://registry.k8s.io"},
		{name: "default server", data: ``, server: "https://example.test"},
		{name: "unknown top key", data: `sever = "https://x"`, errKey: "sever"},
		{name: "unknown host key", data: "[host.\"http://127.0.0.1:1\"]\ncapabilites = [\"pull\"]\n", errKey: "capabilites"},
		{name: "bad capability", data: "[host.\"http://127.0.0.1:1\"]\ncapabilities = [\"fetch\"]\n", errKey: `host."http://127.0.0.1:1".capabilities`},
		{name: "empty capabilities", data: "[host.\"http://127.0.0.1:1\"]\ncapabilities = []\n", errKey: "capabilities"},
		{name: "no scheme", data: "[host.\"127.0.0.1:5000\"]\n", errKey: `host."127.0.0.1:5000"`},
		{name: "path", data: "[host.\"http://127.0.0.1:5000/foo\"]\n", errKey: "/foo"},
		{name: "bad server", data: `server = "ftp://x"`, errKey: "server"},
		{name: "missing ca", data: "[host.\"https://m\"]\nca = \"/nonexistent/ca.pem\"\n", errKey: ".ca"},
		{name: "toml syntax", data: "server = ", errKey: "hosts.toml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseHostConfig("example.test", "/etc/hosts.d/example.test/hosts.toml", []byte(tc.data))
			if tc.errKey != "" {
				if err == nil || !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.errKey) || !strings.Contains(err.Error(), "hosts.toml") {
					t.Fatalf("err = %v; want ErrInvalidArgument naming the file and %q", err, tc.errKey)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range cfg.Mirrors {
				got = append(got, m.URL.String())
			}
			if strings.Join(got, " ") != strings.Join(tc.mirrors, " ") || cfg.Server.URL.String() != tc.server {
				t.Fatalf("mirrors %v server %s; want %v %s", got, cfg.Server.URL, tc.mirrors, tc.server)
			}
		})
	}
}

func TestLoadHosts(t *testing.T) {
	dir := t.TempDir()
	if h, err := LoadHosts(filepath.Join(dir, "missing")); err != nil || len(h.Configured()) != 0 {
		t.Fatalf("missing dir: %v, %v", h, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "registry.k8s.io"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "registry.k8s.io", "hosts.toml")
	if err := os.WriteFile(file, []byte("[host.\"http://127.0.0.1:5000\"]\ncapabilities=[\"pull\",\"resolve\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := LoadHosts(dir)
	if err != nil {
		t.Fatal(err)
	}
	eps := h.Endpoints("registry.k8s.io")
	if len(eps) != 2 || eps[0].URL.String() != "http://127.0.0.1:5000" || !eps[0].Mirror || eps[1].URL.String() != "https://registry.k8s.io" || eps[1].Mirror {
		t.Fatalf("endpoints %+v", eps)
	}
	if eps := h.Endpoints("docker.io"); len(eps) != 1 || eps[0].URL.String() != "https://registry-1.docker.io" {
		t.Fatalf("docker.io endpoints %+v", eps)
	}
	if err := os.WriteFile(file, []byte("[host.\"http://127.0.0.1:5000\"]\nmirror = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadHosts(dir); err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "mirror") {
		t.Fatalf("bad key: err = %v; want one naming %s and the key", err, file)
	}
}

func TestDockerCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	enc := base64.StdEncoding.EncodeToString([]byte("alice:s3cr:et"))
	data := `{"auths":{"https://index.docker.io/v1/":{"auth":"` + enc + `"},"127.0.0.1:5000":{"username":"bob","password":"pw"},"bad.example":{"auth":"!!"}}}`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := DockerCredentials(path)
	for _, tc := range []struct{ host, user, pass string }{
		{"docker.io", "alice", "s3cr:et"},
		{"registry-1.docker.io", "alice", "s3cr:et"},
		{"127.0.0.1:5000", "bob", "pw"},
		{"other.example", "", ""},
	} {
		u, p, err := creds(tc.host)
		if err != nil || u != tc.user || p != tc.pass {
			t.Errorf("%s: %q %q %v; want %q %q", tc.host, u, p, err, tc.user, tc.pass)
		}
	}
	if _, _, err := creds("bad.example"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad auth: err = %v", err)
	}
	if u, _, err := DockerCredentials(filepath.Join(t.TempDir(), "none.json"))("docker.io"); u != "" || err != nil {
		t.Errorf("missing file: %q %v", u, err)
	}
	chained := ChainCredentials(StaticCredentials(map[string][2]string{"x.example": {"x", "y"}}), creds)
	if u, _, _ := chained("x.example"); u != "x" {
		t.Errorf("chain: static not first: %q", u)
	}
	if u, _, _ := chained("docker.io"); u != "alice" {
		t.Errorf("chain: docker not asked: %q", u)
	}
}

func TestPlainGuard(t *testing.T) {
	o := &Options{Insecure: []string{"10.1.2.3:5000", "insecure.example"}}
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"https://registry.example", false},
		{"https://127.0.0.1:5000", true},
		{"https://localhost:5000", true},
		{"https://[::1]:5000", true},
		{"https://10.1.2.3:5000", true},
		{"https://10.1.2.3:5001", false},
		{"https://insecure.example:443", true},
		{"http://mirror.example", true}, // written as http:// in hosts.toml
		{"https://192.168.1.1", false},
	} {
		u, err := parseEndpointURL(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.plainAllowed(Endpoint{URL: u}); got != tc.want {
			t.Errorf("plainAllowed(%s) = %v, want %v", tc.url, got, tc.want)
		}
	}

}
