package daemon

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/gantry-project/gantry/internal/unpack"
	"github.com/gantry-project/gantry/test/registry"
)

// holdProxy is a reverse proxy in front of a registry that counts the blob
// GETs per digest with their Range headers and, while holding is on, sends
// only the first holdAfter bytes of the blobs in hold and then nothing
// until the client goes away (or release is called).
type holdProxy struct {
	srv       *httptest.Server
	hold      map[digest.Digest]bool
	holdAfter int64
	released  chan struct{}
	once      sync.Once

	mu      sync.Mutex
	holding bool
	gets    map[digest.Digest][]string // Range header of each GET ("" for none)
	held    map[digest.Digest]bool     // holdAfter bytes sent, now waiting
}

func newHoldProxy(t *testing.T, upstream string, holdAfter int64, hold ...digest.Digest) *holdProxy {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	p := &holdProxy{hold: map[digest.Digest]bool{}, holdAfter: holdAfter, released: make(chan struct{}),
		holding: true, gets: map[digest.Digest][]string{}, held: map[digest.Digest]bool{}}
	for _, d := range hold {
		p.hold[d] = true
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // every write reaches the client at once
	rp.ModifyResponse = func(resp *http.Response) error {
		d, ok := blobDigest(resp.Request)
		if !ok || resp.StatusCode/100 != 2 {
			return nil
		}
		p.mu.Lock()
		hold := p.holding && p.hold[d]
		p.mu.Unlock()
		if hold {
			resp.Body = &holdingBody{p: p, d: d, rc: resp.Body, left: holdAfter, done: resp.Request.Context().Done()}
		}
		return nil
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, ok := blobDigest(r); ok && r.Method == http.MethodGet {
			p.mu.Lock()
			p.gets[d] = append(p.gets[d], r.Header.Get("Range"))
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	t.Cleanup(p.release) // runs first: ends held responses
	return p
}

// blobDigest returns the digest of a /v2/<repo>/blobs/<digest> request.
func blobDigest(r *http.Request) (digest.Digest, bool) {
	i := strings.LastIndex(r.URL.Path, "/blobs/")
	if !strings.HasPrefix(r.URL.Path, "/v2/") || i < 0 {
		return "", false
	}
	d := digest.Digest(r.URL.Path[i+len("/blobs/"):])
	return d, d.Validate() == nil
}

// stopHolding serves every later request in full.
func (p *holdProxy) stopHolding() {
	p.mu.Lock()
	p.holding = false
	p.mu.Unlock()
}

func (p *holdProxy) release() { p.once.Do(func() { close(p.released) }) }

func (p *holdProxy) ref(name string) string {
	return strings.TrimPrefix(p.srv.URL, "http://") + "/" + name
}

// requests returns the Range headers of the GETs of d, in order.
func (p *holdProxy) requests(d digest.Digest) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.gets[d])
}

func (p *holdProxy) isHeld(d digest.Digest) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held[d]
}

// holdingBody passes left bytes through, then blocks until the request ends
// or the proxy is released (and then ends the body early).
type holdingBody struct {
	p    *holdProxy
	d    digest.Digest
	rc   io.ReadCloser
	left int64
	done <-chan struct{}
}

func (b *holdingBody) Read(buf []byte) (int, error) {
	if b.left > 0 {
		if int64(len(buf)) > b.left {
			buf = buf[:b.left]
		}
		n, err := b.rc.Read(buf)
		b.left -= int64(n)
		return n, err
	}
	b.p.mu.Lock()
	b.p.held[b.d] = true
	b.p.mu.Unlock()
	select {
	case <-b.done:
	case <-b.p.released:
	}
	return 0, io.ErrUnexpectedEOF
}

func (b *holdingBody) Close() error { return b.rc.Close() }

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// kill9 kills the env's gantryd with SIGKILL and reaps it.
func (e *daemonEnv) kill9() {
	e.t.Helper()
	if err := e.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		e.t.Fatalf("kill -9 gantryd %d: %v", e.cmd.Process.Pid, err)
	}
	<-e.exited
	e.cmd = nil
}

// waitFor polls cond until it holds, failing the test (with what describes
// the state) after a generous deadline.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %s", what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ingestOnDisk is an ingest directory of the content store, read by hand.
type ingestOnDisk struct {
	dir      string
	ref      string
	expected digest.Digest
	total    int64
	size     int64 // of its data file; -1 if there is none
}

func readIngests(t *testing.T, contentRoot string) []ingestOnDisk {
	t.Helper()
	dirs, err := os.ReadDir(filepath.Join(contentRoot, "ingest"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []ingestOnDisk
	for _, d := range dirs {
		in := ingestOnDisk{dir: filepath.Join(contentRoot, "ingest", d.Name()), size: -1}
		if b, err := os.ReadFile(filepath.Join(in.dir, "ingest.json")); err == nil {
			var m struct {
				Ref      string        `json:"ref"`
				Expected digest.Digest `json:"expected"`
				Total    int64         `json:"total"`
			}
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("ingest %s: ingest.json: %v", in.dir, err)
			}
			in.ref, in.expected, in.total = m.Ref, m.Expected, m.Total
		}
		if st, err := os.Stat(filepath.Join(in.dir, "data")); err == nil {
			in.size = st.Size()
		}
		out = append(out, in)
	}
	return out
}

// blobsOnDisk returns the blob files of the content store, checking by hand
// that each file's sha256 is its name (nothing partial is visible).
func blobsOnDisk(t *testing.T, contentRoot string) map[digest.Digest]bool {
	t.Helper()
	dir := filepath.Join(contentRoot, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	out := map[digest.Digest]bool{}
	for _, e := range ents {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != e.Name() {
			t.Errorf("blob file %s holds content of sha256:%s: a partial or corrupt blob is visible", e.Name(), got)
		}
		out[digest.NewDigestFromEncoded(digest.SHA256, e.Name())] = true
	}
	return out
}

// mountsUnder returns the mount points at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

type snapshotJSON struct {
	Key    string `json:"key"`
	Parent string `json:"parent"`
	Kind   string `json:"kind"`
}

// checkProblems runs gantry system check and returns its problem lines
// ("<kind> <subject>: <message>"); it fails the test unless the exit code
// agrees with the count (0 with none, 1 with some).
func (e *daemonEnv) checkProblems() []string {
	e.t.Helper()
	out, errOut, code := e.gantry("system", "check")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "checked ") {
		e.t.Fatalf("system check: exit %d, no summary line\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	problems := lines[:len(lines)-1]
	if want := min(len(problems), 1); code != want {
		e.t.Fatalf("system check exited %d with %d problem(s), want %d\nstdout: %s\nstderr: %s", code, len(problems), want, out, errOut)
	}
	return problems
}

// TestPullKilledDaemon kills gantryd with SIGKILL in the middle of a pull,
// while some layers are verified and two others half downloaded, and checks
// that the store is consistent, that a pull after the restart downloads no
// verified blob again and resumes the half ones with Range requests, and
// that removing the image afterwards leaves nothing behind.
func TestPullKilledDaemon(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	const holdAfter = 1 << 20
	var layers []*registry.Layer
	for i, size := range []int64{4 << 20, 3 << 20, 256 << 10, 300 << 10, 200 << 10} {
		l, err := registry.RandomLayer(size, uint64(0x9011c111+i))
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := registry.NewImage(registry.Platform{}, false, []string{"/bin/sh"}, layers...)
	if err != nil {
		t.Fatal(err)
	}
	registry.Push(t, reg, "pullkill:1", img)
	// The first two layers (the first two of the three parallel
	// downloads) stop after holdAfter bytes; the third download slot
	// fetches the three small layers one after the other.
	held := []*registry.Layer{layers[0], layers[1]}
	small := []digest.Digest{img.ConfigDigest(), layers[2].Digest, layers[3].Digest, layers[4].Digest}
	px := newHoldProxy(t, reg.URL(), holdAfter, held[0].Digest, held[1].Digest)
	ref := px.ref("pullkill:1")

	e := newEnv(t)
	// Three parallel downloads (the first two are held), a cgroup parent
	// of its own (system check reports any cgroup under it).
	cfg := fmt.Sprintf("log_level = \"debug\"\ncgroup_parent = %q\n[registry]\nconfig_dir = %q\nmax_concurrent_downloads = 3\n",
		e.cgroupParent, filepath.Join(e.dir, "etc"))
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start()
	contentRoot := filepath.Join(e.root, "content")

	pullOut, pullDone := startPull(t, e, "pull", ref)

	// Wait until the small blobs are verified and both held layers have
	// holdAfter bytes in their ingests.
	waitFor(t, "the small blobs in the store and the held layers half written", func() (bool, string) {
		blobs := blobsOnDisk(t, contentRoot)
		for _, d := range small {
			if !blobs[d] {
				return false, fmt.Sprintf("blob %s not in the store yet (pull output: %q)", d, pullOut.String())
			}
		}
		ingests := readIngests(t, contentRoot)
		for _, l := range held {
			if !px.isHeld(l.Digest) {
				return false, fmt.Sprintf("the proxy has not sent %d bytes of %s yet", holdAfter, l.Digest)
			}
			i := slices.IndexFunc(ingests, func(in ingestOnDisk) bool { return in.expected == l.Digest })
			if i < 0 || ingests[i].size != holdAfter {
				return false, fmt.Sprintf("ingest of %s not at %d bytes: %+v", l.Digest, holdAfter, ingests)
			}
		}
		return true, ""
	})
	e.kill9()
	select {
	case err := <-pullDone:
		pullDone <- err
		if err == nil {
			t.Fatalf("gantry pull succeeded although gantryd was killed:\n%s", pullOut.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("gantry pull did not end within 2 minutes of gantryd's death:\n%s", pullOut.String())
	}
	px.stopHolding()
	px.release()

	// The store by hand: only whole, verified blobs under blob names; the
	// held layers are resumable ingests holding a prefix of their blob.
	blobs := blobsOnDisk(t, contentRoot)
	for _, d := range small {
		if !blobs[d] {
			t.Errorf("verified blob %s missing after the kill", d)
		}
	}
	for _, l := range held {
		if blobs[l.Digest] {
			t.Errorf("half-downloaded layer %s is visible as a blob", l.Digest)
		}
	}
	ingests := readIngests(t, contentRoot)
	if len(ingests) != len(held) {
		t.Errorf("ingests after the kill = %+v, want one for each of the %d held layers", ingests, len(held))
	}
	for _, in := range ingests {
		i := slices.IndexFunc(held, func(l *registry.Layer) bool { return l.Digest == in.expected })
		if i < 0 {
			t.Errorf("ingest %+v is not one of a held layer", in)
			continue
		}
		if in.ref != "fetch-"+string(in.expected) || in.total != held[i].Size || in.size != holdAfter {
			t.Errorf("ingest %+v: want ref fetch-%s, total %d, %d bytes", in, in.expected, held[i].Size, holdAfter)
		}
		checkPrefix(t, in, held[i])
	}
	if m := mountsUnder(t, e.dir); len(m) != 0 {
		t.Errorf("mounts left below the test directory after the kill: %v", m)
	}

	// Restart on the same root and state.
	e.start()
	// The unpack runs beside the downloads: a layer above the held ones
	// may have been extracting when gantryd died (with more than two
	// CPUs; a layer waits for its blob before it prepares a snapshot).
	// Such an extract-* snapshot is unfinished work that system check
	// must report and system prune remove; nothing else may be left.
	snaps := decode[[]snapshotJSON](t, "snapshot ls", e.mustGantry("snapshot", "ls", "--format", "json"))
	var extract []string
	for _, s := range snaps {
		if strings.HasPrefix(s.Key, "extract-") {
			extract = append(extract, s.Key)
		}
	}
	// system check: the two unfinished ingests (and those snapshots),
	// nothing else (the verified blobs are not corrupt, no mount is left).
	problems := e.checkProblems()
	var wantProblems []string
	for _, l := range held {
		wantProblems = append(wantProblems, fmt.Sprintf("ingest fetch-%s: unfinished: %d of %d bytes of %s", l.Digest, holdAfter, l.Size, l.Digest))
	}
	for _, k := range extract {
		wantProblems = append(wantProblems, "snapshot "+k+": ")
	}
	for _, p := range problems {
		if !slices.ContainsFunc(wantProblems, func(w string) bool { return strings.HasPrefix(p, w) }) {
			t.Errorf("system check after the restart reports %q; want only the unfinished ingests of the held layers and snapshots %v", p, extract)
		}
	}
	for _, w := range wantProblems {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, w) }) {
			t.Errorf("system check after the restart does not report %q:\n%s", w, strings.Join(problems, "\n"))
		}
	}
	if len(extract) > 0 {
		out := e.mustGantry("system", "prune")
		for _, k := range extract {
			if !strings.Contains(out, "removed snapshot: "+k) {
				t.Errorf("system prune did not remove %s:\n%s", k, out)
			}
		}
	}

	// Pull again: no verified blob is fetched again, the held ones resume.
	e.mustGantry("pull", ref)
	for _, d := range small {
		if got := px.requests(d); len(got) != 1 {
			t.Errorf("blob %s verified before the kill was requested %d times in all (Range headers %q), want once", d, len(got), got)
		}
	}
	for _, l := range held {
		got := px.requests(l.Digest)
		want := []string{"", fmt.Sprintf("bytes=%d-", holdAfter)}
		if !slices.Equal(got, want) {
			t.Errorf("GETs of the interrupted layer %s carried Range headers %q, want %q (the second pull resumes at the ingest's offset)", l.Digest, got, want)
		}
	}
	imgs := decode[[]imageJSON](t, "images --format json", e.mustGantry("images", "--format", "json"))
	if len(imgs) != 1 || !strings.HasSuffix(imgs[0].Name, "pullkill:1") || imgs[0].Digest != string(img.Digest) {
		t.Fatalf("images after the second pull = %+v, want pullkill:1 at %s", imgs, img.Digest)
	}
	var diffIDs []digest.Digest
	for _, l := range layers {
		diffIDs = append(diffIDs, l.DiffID)
	}
	snaps = decode[[]snapshotJSON](t, "snapshot ls", e.mustGantry("snapshot", "ls", "--format", "json"))
	have := map[string]string{}
	for _, s := range snaps {
		have[s.Key] = s.Kind
		if strings.HasPrefix(s.Key, "extract-") {
			t.Errorf("unpack snapshot %s (%s) left after the pull", s.Key, s.Kind)
		}
	}
	chain := unpack.ChainIDs(diffIDs)
	for i, c := range chain {
		if have[string(c)] != "committed" {
			t.Errorf("layer %d: snapshot %s is %q, want committed (snapshots: %+v)", i, c, have[string(c)], snaps)
		}
	}
	blobs = blobsOnDisk(t, contentRoot)
	for _, l := range layers {
		if !blobs[l.Digest] {
			t.Errorf("layer %s not in the store after the second pull", l.Digest)
		}
	}
	if in := readIngests(t, contentRoot); len(in) != 0 {
		t.Errorf("ingests left after a successful pull: %+v", in)
	}
	if p := e.checkProblems(); len(p) != 0 {
		t.Errorf("system check after the second pull:\n%s", strings.Join(p, "\n"))
	}

	// Nothing the killed pull held outlives the image: after rmi and a
	// prune the store is empty.
	e.mustGantry("rmi", imgs[0].Name)
	e.mustGantry("system", "prune")
	if b := blobsOnDisk(t, contentRoot); len(b) != 0 {
		t.Errorf("blobs left after rmi and prune (still held by the killed pull?): %v", b)
	}
	if s := decode[[]snapshotJSON](t, "snapshot ls", e.mustGantry("snapshot", "ls", "--format", "json")); len(s) != 0 {
		t.Errorf("snapshots left after rmi and prune: %+v", s)
	}
	if p := e.checkProblems(); len(p) != 0 {
		t.Errorf("system check after rmi:\n%s", strings.Join(p, "\n"))
	}
}

// checkPrefix checks that an ingest's data is the start of the layer blob.
func checkPrefix(t *testing.T, in ingestOnDisk, l *registry.Layer) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(in.dir, "data"))
	if err != nil {
		t.Errorf("ingest of %s: %v", l.Digest, err)
		return
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	want := make([]byte, len(data))
	if _, err := io.ReadFull(rc, want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, want) {
		t.Errorf("ingest of %s: its %d bytes are not the start of the blob", l.Digest, len(data))
	}
}

// TestPullKilledDuringUnpack kills gantryd while a layer is being written
// into its snapshot: after the restart the half-extracted snapshot is an
// active extract-* snapshot that system check reports and system prune
// removes, no mount is left, and the next pull downloads nothing again and
// completes the image.
func TestPullKilledDuringUnpack(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	const bigSize = 96 << 20
	small, err := registry.RandomLayer(64<<10, 0x5a11)
	if err != nil {
		t.Fatal(err)
	}
	big, err := registry.RandomLayer(bigSize, 0xb16)
	if err != nil {
		t.Fatal(err)
	}
	img, err := registry.NewImage(registry.Platform{}, false, []string{"/bin/sh"}, small, big)
	if err != nil {
		t.Fatal(err)
	}
	registry.Push(t, reg, "unpackkill:1", img)
	px := newHoldProxy(t, reg.URL(), 0) // counts only
	px.stopHolding()
	ref := px.ref("unpackkill:1")

	e := newEnv(t)
	e.start()
	contentRoot := filepath.Join(e.root, "content")

	pullOut, pullDone := startPull(t, e, "pull", "--quiet", ref)
	// The big layer's file grows in a snapshot directory: kill then.
	pattern := filepath.Join(e.root, "snapshots", "*", "snapshots", "*", "fs", "large.bin")
	waitFor(t, "the big layer half written into its snapshot", func() (bool, string) {
		select {
		case err := <-pullDone:
			pullDone <- err
			t.Skipf("the pull ended (%v) before the unpack of a %d-byte layer was seen in progress: nothing to kill", err, bigSize)
		default:
		}
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			if st, err := os.Stat(f); err == nil && st.Size() > 2*small.Size && st.Size() < bigSize {
				return true, ""
			}
		}
		return false, fmt.Sprintf("files %v", files)
	})
	e.kill9()
	if err := <-pullDone; err == nil {
		t.Fatalf("gantry pull succeeded although gantryd was killed:\n%s", pullOut.String())
	}
	pullDone <- nil

	blobs := blobsOnDisk(t, contentRoot)
	for _, d := range []digest.Digest{img.Digest, img.ConfigDigest(), small.Digest, big.Digest} {
		if !blobs[d] {
			t.Errorf("blob %s verified before the kill is missing", d)
		}
	}
	if m := mountsUnder(t, e.dir); len(m) != 0 {
		t.Errorf("mounts left below the test directory after the kill: %v", m)
	}

	e.start()
	var extract []string
	for _, s := range decode[[]snapshotJSON](t, "snapshot ls", e.mustGantry("snapshot", "ls", "--format", "json")) {
		if strings.HasPrefix(s.Key, "extract-") {
			extract = append(extract, s.Key)
			if s.Kind != "active" {
				t.Errorf("snapshot %s is %s, want active", s.Key, s.Kind)
			}
		}
	}
	// Layers may be extracted in parallel: at least the big one is there.
	if len(extract) == 0 {
		t.Fatalf("no extract snapshot after the restart, want the one killed in the middle")
	}
	// system check reports them (and nothing else: no corrupt or orphan
	// blob, no ingest, no mount); system prune removes them.
	problems := e.checkProblems()
	for _, p := range problems {
		if !slices.ContainsFunc(extract, func(k string) bool { return strings.HasPrefix(p, "snapshot "+k+": ") }) {
			t.Errorf("system check after the restart reports %q, want only the unfinished snapshots %v", p, extract)
		}
	}
	out := e.mustGantry("system", "prune")
	for _, k := range extract {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, "snapshot "+k+": ") }) {
			t.Errorf("system check after the restart does not report the unfinished snapshot %s:\n%s", k, strings.Join(problems, "\n"))
		}
		if !strings.Contains(out, "removed snapshot: "+k) {
			t.Errorf("system prune did not remove %s:\n%s", k, out)
		}
	}
	for _, d := range []digest.Digest{img.ConfigDigest(), small.Digest, big.Digest} {
		if !blobsOnDisk(t, contentRoot)[d] {
			t.Errorf("system prune removed blob %s of the killed pull: its retry downloads it again", d)
		}
	}

	e.mustGantry("pull", "--quiet", ref)
	for _, d := range []digest.Digest{img.ConfigDigest(), small.Digest, big.Digest} {
		if got := px.requests(d); len(got) != 1 {
			t.Errorf("blob %s requested %d times in all, want once", d, len(got))
		}
	}
	snaps := decode[[]snapshotJSON](t, "snapshot ls", e.mustGantry("snapshot", "ls", "--format", "json"))
	have := map[string]string{}
	for _, s := range snaps {
		have[s.Key] = s.Kind
	}
	for i, c := range unpack.ChainIDs([]digest.Digest{small.DiffID, big.DiffID}) {
		if have[string(c)] != "committed" {
			t.Errorf("layer %d: snapshot %s is %q, want committed (snapshots %+v)", i, c, have[string(c)], snaps)
		}
	}
	if len(snaps) != 2 {
		t.Errorf("snapshots after the second pull: %+v, want the two layers only", snaps)
	}
	if p := e.checkProblems(); len(p) != 0 {
		t.Errorf("system check after the second pull:\n%s", strings.Join(p, "\n"))
	}
}

// startPull runs the gantry CLI with args against e's daemon in the
// background; the channel gets its exit. t.Cleanup kills it if it still runs.
func startPull(t *testing.T, e *daemonEnv, args ...string) (*lockedBuffer, chan error) {
	t.Helper()
	pull := exec.Command(filepath.Join(binDir, "gantry"), append([]string{"--address", e.sock}, args...)...)
	out := &lockedBuffer{}
	pull.Stdout, pull.Stderr = out, out
	pull.Env = append(os.Environ(), "GANTRY_ADDRESS=", "GANTRY_NAMESPACE=")
	if err := pull.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pull.Wait() }()
	t.Cleanup(func() {
		_ = pull.Process.Kill()
		<-done
		done <- nil
	})
	return out, done
}
