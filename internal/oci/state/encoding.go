package state

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/gantry-project/gantry/internal/oci/spec"
)

// state.json is encoding/json's encoding of Container, but the spec in it
// is encoded and decoded by spec.EncodeJSON and spec.DecodeJSON: every
// gantry-oci command is a fresh process, and encoding/json's first use of
// the ~100 runtime-spec types costs it ~1-1.5 ms of reflection set-up
// (create encodes the state while the container's init starts; delete,
// kill, state, start and the others decode it). The other fields go
// through encoding/json on the small shadow structs below, which mirror
// Container field for field (TestContainerJSONMirrorsContainer), so the
// bytes are what json.Marshal of Container wrote before these methods
// existed, and either build reads the other's state.json.

// containerHead is the fields of Container before Spec, as Container
// declares them.
type containerHead struct {
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
}

// containerTail is the fields of Container after Spec.
type containerTail struct {
	SeccompKey string `json:"seccomp_key,omitempty"`
}

// containerJSON is what UnmarshalJSON decodes: Container with the spec
// left as JSON text for spec.DecodeJSON.
type containerJSON struct {
	containerHead
	Spec json.RawMessage `json:"spec"`
	containerTail
}

// MarshalJSON encodes c as json.Marshal encodes a struct with Container's
// fields and tags, the spec by spec.EncodeJSON.
func (c Container) MarshalJSON() ([]byte, error) {
	head, err := json.Marshal(containerHead{
		ID: c.ID, Pid: c.Pid, PidStartTime: c.PidStartTime, Bundle: c.Bundle, Rootfs: c.Rootfs,
		Created: c.Created, Owner: c.Owner, Annotations: c.Annotations, CgroupPaths: c.CgroupPaths,
		NamespacePaths: c.NamespacePaths,
	})
	if err != nil {
		return nil, err
	}
	specJSON, err := spec.EncodeJSON(c.Spec)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	tail, err := json.Marshal(containerTail{SeccompKey: c.SeccompKey})
	if err != nil {
		return nil, err
	}
	// head is {...} with at least "id" in it; tail is {} or {...}. The
	// spec is spliced between them rather than passed to json.Marshal as
	// a json.RawMessage, which would scan and copy it once more.
	b := make([]byte, 0, len(head)+len(`,"spec":`)+len(specJSON)+len(tail))
	b = append(b, head[:len(head)-1]...)
	b = append(b, `,"spec":`...)
	b = append(b, specJSON...)
	if len(tail) > len("{}") {
		b = append(b, ',')
		b = append(b, tail[1:]...)
	} else {
		b = append(b, '}')
	}
	return b, nil
}

// UnmarshalJSON decodes state.json as json.Unmarshal decodes it into a
// Container without this method, the spec by spec.DecodeJSON. As with
// encoding/json, fields absent from data keep their values, but a spec in
// data replaces c.Spec rather than being merged into it.
func (c *Container) UnmarshalJSON(data []byte) error {
	j := containerJSON{
		containerHead: containerHead{
			ID: c.ID, Pid: c.Pid, PidStartTime: c.PidStartTime, Bundle: c.Bundle, Rootfs: c.Rootfs,
			Created: c.Created, Owner: c.Owner, Annotations: c.Annotations, CgroupPaths: c.CgroupPaths,
			NamespacePaths: c.NamespacePaths,
		},
		containerTail: containerTail{SeccompKey: c.SeccompKey},
	}
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	s := c.Spec
	switch string(j.Spec) {
	case "":
		// no "spec" key: c.Spec stays
	case "null":
		s = nil
	default:
		var err error
		if s, err = spec.DecodeJSON(j.Spec); err != nil {
			return fmt.Errorf("spec: %w", err)
		}
	}
	h, t := j.containerHead, j.containerTail
	*c = Container{
		ID: h.ID, Pid: h.Pid, PidStartTime: h.PidStartTime, Bundle: h.Bundle, Rootfs: h.Rootfs,
		Created: h.Created, Owner: h.Owner, Annotations: h.Annotations, CgroupPaths: h.CgroupPaths,
		NamespacePaths: h.NamespacePaths, Spec: s, SeccompKey: t.SeccompKey,
	}
	return nil
}
