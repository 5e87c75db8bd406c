package container

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/oci/state"
)

// viewContainer is a state with every field of the exec view set.
func viewContainer() *state.Container {
	return &state.Container{
		ID: "c1", Pid: 4242, PidStartTime: 1 << 40, Bundle: "/b", Rootfs: "/b/rootfs",
		CgroupPaths: map[string]string{"": "/sys/fs/cgroup/unified/g", "cpu": "/sys/fs/cgroup/cpu/g"},
		SeccompKey:  "abc",
		Spec:        fullInitConfig().Spec,
	}
}

// TestExecViewRoundTrip: the flat view decodes to what the view of the
// same state decoded from state.json is.
func TestExecViewRoundTrip(t *testing.T) {
	c := viewContainer()
	got, err := decodeExecView(encodeExecView(state.ExecViewOf(c)))
	if err != nil {
		t.Fatal(err)
	}
	s := &state.Store{Root: t.TempDir()}
	if err := os.Mkdir(s.Dir(c.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(c); err != nil {
		t.Fatal(err)
	}
	want, err := s.LoadExecView(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !want.HasLinux || !want.Personality || !want.Seccomp || want.ListenerPath == "" || want.Process == nil || len(want.Namespaces) == 0 {
		t.Fatalf("fixture: the JSON view lacks a field: %+v", want)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("flat view:\n got %s\nwant %s (from state.json)", g, w)
	}

	// A spec without linux, process or personality.
	c.Spec = &specs.Spec{Version: "1.3.0"}
	c.CgroupPaths = nil
	got, err = decodeExecView(encodeExecView(state.ExecViewOf(c)))
	if err != nil {
		t.Fatal(err)
	}
	if got.HasLinux || got.Process != nil || got.Personality || got.Seccomp || got.CgroupPaths != nil {
		t.Errorf("empty spec decoded as %+v", got)
	}
}

// TestExecViewMalformed: a view cut short anywhere, with bytes left over
// or of another version is refused, never half read.
func TestExecViewMalformed(t *testing.T) {
	b := encodeExecView(state.ExecViewOf(viewContainer()))
	for n := 0; n < len(b); n++ {
		if v, err := decodeExecView(b[:n]); err == nil {
			t.Fatalf("view cut to %d of %d bytes decoded: %+v", n, len(b), v)
		}
	}
	if _, err := decodeExecView(append(b[:len(b):len(b)], 0)); err == nil {
		t.Error("a view with a byte left over decoded")
	}
	other := append([]byte{}, b...)
	other[len(execViewMagic)-2] = '2'
	if _, err := decodeExecView(other); err == nil {
		t.Error("a view of another version decoded")
	}
}

// TestLoadExecViewFallback: exec reads exec.view when it is there and of
// this version, else state.json; a view is read only once state.json is
// committed, and Remove takes it away.
func TestLoadExecViewFallback(t *testing.T) {
	s := &state.Store{Root: t.TempDir()}
	r := &Runtime{Store: s, Log: slog.New(slog.DiscardHandler)}
	c := viewContainer()
	if err := s.Reserve(c.ID); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(c)
	if err := s.Stage(c.ID, data); err != nil {
		t.Fatal(err)
	}
	// The flat view says pid 1, state.json 4242: which one was read shows.
	flat := *c
	flat.Pid = 1
	if err := s.StageView(c.ID, encodeExecView(state.ExecViewOf(&flat))); err != nil {
		t.Fatal(err)
	}
	if _, err := r.loadExecView(c.ID); err == nil {
		t.Fatal("a staged, uncommitted state was read")
	}
	if err := s.Commit(c.ID); err != nil {
		t.Fatal(err)
	}
	if v, err := r.loadExecView(c.ID); err != nil || v.Pid != 1 {
		t.Fatalf("committed: view %+v, %v; want the flat view (pid 1)", v, err)
	}
	viewPath := filepath.Join(s.Dir(c.ID), "exec.view")
	for name, content := range map[string][]byte{
		"another version": []byte("gantry-exec-view\x002\x00"),
		"garbage":         []byte("{}"),
		"another id":      encodeExecView(&state.ExecView{ID: "other", Pid: 1}),
	} {
		if err := os.WriteFile(viewPath, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if v, err := r.loadExecView(c.ID); err != nil || v.Pid != 4242 {
			t.Errorf("%s: view %+v, %v; want state.json's (pid 4242)", name, v, err)
		}
	}
	if err := os.Remove(viewPath); err != nil {
		t.Fatal(err)
	}
	if v, err := r.loadExecView(c.ID); err != nil || v.Pid != 4242 {
		t.Errorf("no view: %+v, %v; want state.json's (pid 4242)", v, err)
	}
	if err := s.StageView(c.ID, encodeExecView(state.ExecViewOf(&flat))); err != nil {
		t.Fatal(err)
	}
	// update saves state.json again; the view stays.
	if err := s.Save(c); err != nil {
		t.Fatal(err)
	}
	if v, err := r.loadExecView(c.ID); err != nil || v.Pid != 1 {
		t.Errorf("after a save: view %+v, %v; want the flat view (pid 1)", v, err)
	}
	if err := s.Remove(c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir(c.ID)); !os.IsNotExist(err) {
		t.Errorf("state dir after Remove: %v", err)
	}
	if _, err := r.loadExecView(c.ID); err == nil {
		t.Error("a removed container's view was read")
	}
}
