package remote

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// DockerConfigPath is where docker keeps credentials: $DOCKER_CONFIG/config.json,
// else ~/.docker/config.json.
func DockerConfigPath() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".docker", "config.json")
}

// DockerCredentials returns a Credentials function reading the "auths" of
// docker's config.json at path (DockerConfigPath when empty) at each call:
// "auth" (base64 user:pass) or "username" and "password". A missing file or
// host gives no credentials. Credential helpers (credsStore) are not run.
func DockerCredentials(path string) func(host string) (string, string, error) {
	return func(host string) (string, string, error) {
		p := path
		if p == "" {
			p = DockerConfigPath()
		}
		if p == "" {
			return "", "", nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", "", nil
			}
			return "", "", fmt.Errorf("read credentials %s: %w", p, err)
		}
		var cfg struct {
			Auths map[string]struct {
				Auth     string `json:"auth"`
				Username string `json:"username"`
				Password string `json:"password"`
			} `json:"auths"`
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			return "", "", fmt.Errorf("parse credentials %s: %w: %w", p, err, errdefs.ErrInvalidArgument)
		}
		want := credentialKey(host)
		for key, a := range cfg.Auths {
			if credentialKey(key) != want {
				continue
			}
			if a.Auth != "" {
				dec, err := base64.StdEncoding.DecodeString(a.Auth)
				if err != nil {
					return "", "", fmt.Errorf("credentials %s: auths.%q.auth: %w: %w", p, key, err, errdefs.ErrInvalidArgument)
				}
				user, pass, ok := strings.Cut(string(dec), ":")
				if !ok {
					return "", "", fmt.Errorf("credentials %s: auths.%q.auth: not user:password: %w", p, key, errdefs.ErrInvalidArgument)
				}
				return user, pass, nil
			}
			return a.Username, a.Password, nil
		}
		return "", "", nil
	}
}

// StaticCredentials serves credentials from a map of host to user and
// password (Gantry's own configuration).
func StaticCredentials(m map[string][2]string) func(host string) (string, string, error) {
	return func(host string) (string, string, error) {
		want := credentialKey(host)
		for k, v := range m {
			if credentialKey(k) == want {
				return v[0], v[1], nil
			}
		}
		return "", "", nil
	}
}

// ChainCredentials asks each source in turn and returns the first
// credentials found.
func ChainCredentials(srcs ...func(host string) (string, string, error)) func(host string) (string, string, error) {
	return func(host string) (string, string, error) {
		for _, src := range srcs {
			if src == nil {
				continue
			}
			u, p, err := src(host)
			if err != nil || u != "" || p != "" {
				return u, p, err
			}
		}
		return "", "", nil
	}
}

// credentialKey normalizes a registry name as written in config.json
// ("https://index.docker.io/v1/", "host:port", "https://host") to a host.
func credentialKey(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	switch s {
	case "index.docker.io", dockerHubEndpoint:
		return dockerHub
	}
	return strings.ToLower(s)
}
