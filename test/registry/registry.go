package registry

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Binary is the registry server the harness runs (package docker-registry,
// installed by scripts/deps.sh).
const Binary = "/usr/bin/docker-registry"

// Options picks the variant of the registry Start runs.
type Options struct {
	// Auth protects the registry with htpasswd basic auth for User and
	// Password.
	Auth bool
	// TLS serves HTTPS with a certificate for 127.0.0.1 signed by a CA the
	// harness makes (CAFile).
	TLS bool
}

// Registry is a running docker-registry server.
type Registry struct {
	// User and Password are the credentials of an Auth registry (empty
	// otherwise).
	User, Password string

	host   string
	dir    string
	caFile string
	caPool *x509.CertPool
	tls    bool
	cmd    *exec.Cmd
	done   chan struct{}
	logf   string
}

// Available reports whether the registry binary is installed.
func Available() bool {
	_, err := os.Stat(Binary)
	return err == nil
}

// Start runs a registry for the test; t.Cleanup stops it and removes its
// directories. It skips the test when the binary is missing.
func Start(t testing.TB, opts Options) *Registry {
	t.Helper()
	if !Available() {
		t.Skipf("%s not installed (scripts/deps.sh installs docker-registry)", Binary)
	}
	r := &Registry{dir: t.TempDir(), tls: opts.TLS}
	if err := os.MkdirAll(filepath.Join(r.dir, "storage"), 0o755); err != nil {
		t.Fatal(err)
	}
	var authYAML, tlsYAML string
	if opts.Auth {
		r.User, r.Password = "gantry", randomHex(t, 8)
		hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("bcrypt: %v", err)
		}
		htpasswd := filepath.Join(r.dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(r.User+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		authYAML = fmt.Sprintf("auth:\n  htpasswd:\n    realm: gantry-test\n    path: %s\n", htpasswd)
	}
	if opts.TLS {
		cert, key := r.makeCA(t)
		tlsYAML = fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", cert, key)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := freePort(t)
		r.host = fmt.Sprintf("127.0.0.1:%d", port)
		config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: %s
%s%s`, filepath.Join(r.dir, "storage"), r.host, randomHex(t, 16), tlsYAML, authYAML)
		cfgPath := filepath.Join(r.dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		if lastErr = r.run(cfgPath); lastErr == nil {
			t.Cleanup(r.Stop)
			return r
		}
	}
	t.Fatalf("start %s: %v", Binary, lastErr)
	return nil
}

// run starts the server and waits until /v2/ answers.
func (r *Registry) run(cfgPath string) error {
	r.logf = filepath.Join(r.dir, "registry.log")
	logFile, err := os.Create(r.logf)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(Binary, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(r.done) }()
	client := r.Client()
	client.Timeout = 2 * time.Second
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			out, _ := os.ReadFile(r.logf)
			return fmt.Errorf("registry on %s exited: %s", r.host, bytes.TrimSpace(out))
		default:
		}
		resp, err := client.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.Stop()
	return fmt.Errorf("registry on %s did not answer /v2/ within 30s", r.host)
}

// Stop kills the server (Start registers it with t.Cleanup; calling it
// earlier makes the registry unreachable, as a test of an origin that is
// down may want).
func (r *Registry) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Kill()
	<-r.done
}

// Host is the registry's host:port, for image references.
func (r *Registry) Host() string { return r.host }

// URL is the registry's base URL (http:// or https://).
func (r *Registry) URL() string {
	if r.tls {
		return "https://" + r.host
	}
	return "http://" + r.host
}

// Ref returns the reference of name ("repo:tag") in this registry.
func (r *Registry) Ref(name string) string { return r.host + "/" + name }

// CAFile is the PEM file of the CA that signed a TLS registry's certificate
// ("" without TLS).
func (r *Registry) CAFile() string { return r.caFile }

// StorageDir is where the registry keeps its blobs.
func (r *Registry) StorageDir() string { return filepath.Join(r.dir, "storage") }

// Log returns what the server wrote so far.
func (r *Registry) Log() string {
	out, _ := os.ReadFile(r.logf)
	return string(out)
}

// Client returns an HTTP client that trusts the registry's CA. It sends no
// credentials.
func (r *Registry) Client() *http.Client {
	return &http.Client{Transport: r.transport()}
}

func (r *Registry) transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.caPool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: r.caPool, MinVersion: tls.VersionTLS12}
	}
	return tr
}

// makeCA writes a CA and a server certificate for 127.0.0.1, ::1 and
// localhost signed by it, and returns the certificate and key paths.
func (r *Registry) makeCA(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gantry test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames:     []string{"localhost"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	r.caFile = filepath.Join(r.dir, "ca.pem")
	certFile = filepath.Join(r.dir, "server.pem")
	keyFile = filepath.Join(r.dir, "server-key.pem")
	writePEM(t, r.caFile, "CERTIFICATE", caDER)
	writePEM(t, certFile, "CERTIFICATE", srvDER)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	r.caPool = x509.NewCertPool()
	r.caPool.AddCert(caCert)
	return certFile, keyFile
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(hex.EncodeToString(b))
}
