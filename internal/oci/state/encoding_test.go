package state

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/oci/spec"
	"github.com/gantry-project/gantry/test/bundle"
)

// oldContainer is Container as it was before it had MarshalJSON and
// UnmarshalJSON: what older builds write and read with plain encoding/json.
type oldContainer struct {
	ID             string            `json:"id"`
	Pid            int               `json:"pid"`
	PidStartTime   uint64            `json:"pid_start_time"`
	Bundle         string            `json:"bundle"`
	Rootfs         string            `json:"rootfs"`
	Created        time.Time         `json:"created"`
	Owner          string            `json:"owner"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	CgroupPaths    map[string]string `json:"cgroup_paths,omitempty"`
	NamespacePaths map[string]string `json:"namespace_paths,omitempty"`
	Spec           *specs.Spec       `json:"spec"`
	SeccompKey     string            `json:"seccomp_key,omitempty"`
}

// TestContainerJSONMirrorsContainer: the shadow structs of encoding.go
// have Container's fields, in its order, with its types and tags (but for
// the spec), so that no field is lost from state.json.
func TestContainerJSONMirrorsContainer(t *testing.T) {
	var want, got []string
	ct := reflect.TypeFor[Container]()
	for i := range ct.NumField() {
		f := ct.Field(i)
		want = append(want, f.Name+" "+f.Type.String()+" "+string(f.Tag))
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[containerHead](), nil, reflect.TypeFor[containerTail]()} {
		if typ == nil {
			f, _ := ct.FieldByName("Spec")
			got = append(got, f.Name+" "+f.Type.String()+" "+string(f.Tag))
			continue
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			got = append(got, f.Name+" "+f.Type.String()+" "+string(f.Tag))
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("containerHead, Spec, containerTail:\n%s\nContainer:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// And the old shape used by the tests below is Container's.
	var old []string
	ot := reflect.TypeFor[oldContainer]()
	for i := range ot.NumField() {
		f := ot.Field(i)
		old = append(old, f.Name+" "+f.Type.String()+" "+string(f.Tag))
	}
	if !reflect.DeepEqual(old, want) {
		t.Errorf("oldContainer:\n%s\nContainer:\n%s", strings.Join(old, "\n"), strings.Join(want, "\n"))
	}
}

// stateCases are containers whose state.json the tests write both ways.
func stateCases() map[string]Container {
	created := time.Date(2026, 11, 29, 8, 1, 2, 345678901, time.UTC)
	withCred := spec.Example()
	withCred.Windows = &specs.Windows{CredentialSpec: map[string]any{"a": []any{1.5, "<b>"}}}
	rich := bundle.BaseSpec("c1")
	rich.Annotations = map[string]string{"<html>&": "\u2028 \x00 é", "b": "", "a": "1"}
	rich.Hostname = "bad \xff utf-8"
	return map[string]Container{
		"zero":    {},
		"id only": {ID: "c1"},
		"full": {
			ID: "c1", Pid: 4242, PidStartTime: 123456789, Bundle: "/run/b<1>", Rootfs: "/run/b<1>/rootfs",
			Created: created, Owner: "root", Annotations: rich.Annotations,
			CgroupPaths:    map[string]string{"memory": "/sys/fs/cgroup/memory/x", "": "/sys/fs/cgroup/x", "cpu,cpuacct": "/y"},
			NamespacePaths: map[string]string{"NEWNET": "/proc/1/ns/net"},
			Spec:           rich, SeccompKey: "0123abcd",
		},
		"Example spec, no seccomp key": {ID: "c2", Created: created.In(time.FixedZone("X", 3600)), Spec: spec.Example()},
		"empty maps": {ID: "c3", Annotations: map[string]string{}, CgroupPaths: map[string]string{},
			NamespacePaths: map[string]string{}, Spec: &specs.Spec{}, SeccompKey: "k"},
		"spec left to encoding/json": {ID: "c4", Spec: withCred},
	}
}

// TestStateJSONCompatible: state.json written by the new code is what
// json.Marshal of the old struct writes, byte for byte; each build's
// state.json decodes with the other's code to the same container.
func TestStateJSONCompatible(t *testing.T) {
	for name, c := range stateCases() {
		t.Run(name, func(t *testing.T) {
			old := oldContainer(c)
			want, err := json.Marshal(&old)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("MarshalJSON differs from the old json.Marshal:\n got %s\nwant %s", got, want)
			}
			for _, v := range []any{c, &c, []Container{c}, map[string]*Container{"x": &c}} {
				viaJSON, err := json.Marshal(v)
				if err != nil || !bytes.Contains(viaJSON, want) {
					t.Errorf("json.Marshal(%T) = %s, %v; want it to hold %s", v, viaJSON, err, want)
				}
			}

			// Old bytes, new code; the result must be what the old code
			// decodes.
			var oldDecoded oldContainer
			if err := json.Unmarshal(want, &oldDecoded); err != nil {
				t.Fatal(err)
			}
			var newDecoded Container
			if err := json.Unmarshal(want, &newDecoded); err != nil {
				t.Fatalf("new code cannot read the old state.json: %v", err)
			}
			if !reflect.DeepEqual(oldContainer(newDecoded), oldDecoded) {
				t.Errorf("new code decodes the old state.json to\n%+v\nold code to\n%+v", newDecoded, oldDecoded)
			}
			// New bytes, old code.
			var fromNew oldContainer
			if err := json.Unmarshal(got, &fromNew); err != nil {
				t.Fatalf("old code cannot read the new state.json: %v", err)
			}
			if !reflect.DeepEqual(fromNew, oldDecoded) {
				t.Errorf("old code decodes the new state.json to\n%+v\nwant\n%+v", fromNew, oldDecoded)
			}
		})
	}
}

// TestStoreSaveLoad goes through the files: Save writes the old bytes,
// Load reads them back as encoding/json reads them.
func TestStoreSaveLoad(t *testing.T) {
	s := &Store{Root: t.TempDir()}
	for name, c := range stateCases() {
		t.Run(name, func(t *testing.T) {
			c.ID = "c" + strings.ReplaceAll(name, " ", "-")
			c.ID = strings.NewReplacer(",", "", "/", "").Replace(c.ID)
			if err := s.Reserve(c.ID); err != nil {
				t.Fatal(err)
			}
			if err := s.Save(&c); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(s.Dir(c.ID), stateFile))
			if err != nil {
				t.Fatal(err)
			}
			old := oldContainer(c)
			if want, _ := json.Marshal(&old); !bytes.Equal(data, want) {
				t.Fatalf("state.json = %s\nwant %s", data, want)
			}
			got, err := s.Load(c.ID)
			if err != nil {
				t.Fatal(err)
			}
			var want oldContainer
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(oldContainer(*got), want) {
				t.Errorf("Load = %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestLoadStateJSONByHand reads state.json files that no build writes,
// but that encoding/json reads: the results must be the same.
func TestLoadStateJSONByHand(t *testing.T) {
	s := &Store{Root: t.TempDir()}
	for name, data := range map[string]string{
		"spec null":               `{"id":"c1","spec":null}`,
		"no spec":                 `{"id":"c1","pid":1}`,
		"spec with unknown keys":  `{"id":"c1","spec":{"ociVersion":"1.0.0","x-vendor":[1],"Process":{"Args":["sh"]}}}`,
		"keys in another case":    `{"ID":"c1","Pid":7,"SPEC":{"hostname":"h"},"Seccomp_Key":"k"}`,
		"unknown top-level keys":  `{"id":"c1","status":"running","spec":{"hostname":"h"}}`,
		"whitespace":              " {\n \"id\" : \"c1\" ,\n \"spec\" : { \"hostname\" : \"h\" } } \n",
		"escaped strings":         `{"id":"c\u0031","annotations":{"\u003c":"\u2028"},"spec":{"hostname":"\u00e9\ud83d\ude00"}}`,
		"seccomp key before spec": `{"seccomp_key":"k","spec":{"hostname":"h"},"id":"c1"}`,
		"top-level null":          `null`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.MkdirAll(s.Dir("c1"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(s.Dir("c1"), stateFile), []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := s.Load("c1")
			if err != nil {
				t.Fatal(err)
			}
			var want oldContainer
			if err := json.Unmarshal([]byte(data), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(oldContainer(*got), want) {
				t.Errorf("Load = %+v\nwant %+v", got, want)
			}
		})
	}
	for name, data := range map[string]string{
		"syntax error":                 `{"id":"c1",`,
		"spec of the wrong type":       `{"id":"c1","spec":[]}`,
		"field of the wrong type":      `{"id":1}`,
		"spec field of the wrong type": `{"id":"c1","spec":{"process":{"args":[1]}}}`,
		"trailing data":                `{"id":"c1"} x`,
		"not an object":                `[]`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(s.Dir("c1"), stateFile), []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			var old oldContainer
			if json.Unmarshal([]byte(data), &old) == nil {
				t.Fatalf("the old code reads %s; the case is wrong", data)
			}
			if c, err := s.Load("c1"); err == nil || !strings.HasPrefix(err.Error(), `state of "c1" is corrupt: `) {
				t.Errorf("Load = %+v, %v; want a corrupt-state error", c, err)
			}
		})
	}
}

// TestUnmarshalJSONKeepsAbsentFields: as encoding/json, a key that is
// absent leaves its field as it was.
func TestUnmarshalJSONKeepsAbsentFields(t *testing.T) {
	sp := &specs.Spec{Hostname: "h"}
	c := Container{ID: "a", Pid: 3, Owner: "o", Spec: sp, SeccompKey: "k", CgroupPaths: map[string]string{"x": "1"}}
	if err := json.Unmarshal([]byte(`{"pid":4,"cgroup_paths":{"y":"2"}}`), &c); err != nil {
		t.Fatal(err)
	}
	want := Container{ID: "a", Pid: 4, Owner: "o", Spec: sp, SeccompKey: "k", CgroupPaths: map[string]string{"x": "1", "y": "2"}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v, want %+v", c, want)
	}
	if err := json.Unmarshal([]byte(`{"spec":null}`), &c); err != nil || c.Spec != nil {
		t.Errorf("spec null: spec = %v, %v; want nil", c.Spec, err)
	}
}
