package container

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/oci/state"
)

// The exec view (state.ExecView) in the flat form that create writes
// beside state.json as exec.view and exec reads instead of state.json:
// the fields in order with initmsg.go's encoder (varints,
// length-prefixed strings, presence bytes; the process as the init
// message carries it, which is all of it), decoded without reflection.
// Decoding the same part of state.json with encoding/json cost a fresh
// gantry-oci ~0.7 ms of first-use reflection on every exec. The file
// outlives the binary that wrote it (an upgrade between create and exec),
// so it starts with a magic and version: a view of another version, or
// one that does not decode, is ignored and state.json read instead.
var execViewMagic = []byte("gantry-exec-view\x001\x00")

func encodeExecView(v *state.ExecView) []byte {
	e := &encoder{b: append(make([]byte, 0, 1024), execViewMagic...)}
	e.str(v.ID)
	e.int(int64(v.Pid))
	e.uint(v.PidStartTime)
	e.strMap(v.CgroupPaths)
	e.str(v.SeccompKey)
	if e.bool(v.Process != nil) {
		e.process(v.Process)
	}
	e.bool(v.HasLinux)
	e.uint(uint64(len(v.Namespaces)))
	for _, ns := range v.Namespaces {
		e.str(string(ns.Type))
		e.str(ns.Path)
	}
	e.bool(v.Personality)
	e.bool(v.Seccomp)
	e.str(v.ListenerPath)
	return e.b
}

func decodeExecView(b []byte) (*state.ExecView, error) {
	if !bytes.HasPrefix(b, execViewMagic) {
		return nil, errors.New("not an exec view of this version")
	}
	d := &decoder{b: b[len(execViewMagic):]}
	v := &state.ExecView{
		ID:           d.str(),
		Pid:          int(d.int()),
		PidStartTime: d.uint(),
		CgroupPaths:  d.strMap(),
		SeccompKey:   d.str(),
	}
	if d.bool() {
		v.Process = d.process()
	}
	v.HasLinux = d.bool()
	if n := d.count(); n > 0 {
		v.Namespaces = make([]specs.LinuxNamespace, n)
		for i := range v.Namespaces {
			v.Namespaces[i] = specs.LinuxNamespace{Type: specs.LinuxNamespaceType(d.str()), Path: d.str()}
		}
	}
	v.Personality = d.bool()
	v.Seccomp = d.bool()
	v.ListenerPath = d.str()
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%d bytes left over", len(d.b))
	}
	return v, nil
}

// loadExecView returns the exec view of id: exec.view when create wrote
// one of this version, else the view decoded from state.json.
func (r *Runtime) loadExecView(id string) (*state.ExecView, error) {
	data, err := r.Store.ReadView(id)
	if err == nil {
		v, derr := decodeExecView(data)
		if derr == nil && v.ID == id {
			return v, nil
		}
		if derr != nil {
			r.Log.Debug("exec view unreadable, reading state.json", "id", id, "error", derr)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		// An invalid id, or a read error: state.json says which.
		r.Log.Debug("exec view unreadable, reading state.json", "id", id, "error", err)
	}
	return r.Store.LoadExecView(id)
}
