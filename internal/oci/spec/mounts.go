package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/oci/hook"
	"github.com/gantry-project/gantry/internal/oci/linux/rootfs"
)

// mounts checks every mounts[] entry.
func (v *validator) mounts() error {
	for i, m := range v.s.Mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		// Relative destinations are deprecated but allowed on Linux: they
		// are interpreted relative to "/".
		if m.Destination == "" {
			return invalidf(field+".destination", "required")
		}
		if _, err := rootfs.ParseMountOptions(m.Options); err != nil {
			return invalid(field+".options", err)
		}
		bind := m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
		if bind {
			if m.Source == "" {
				return invalidf(field+".source", "required for a bind mount")
			}
			src := v.resolve(m.Source)
			if _, err := os.Stat(src); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return invalidf(field+".source", "%q does not exist", src)
				}
				return invalid(field+".source", err)
			}
		}
		idmap := slices.Contains(m.Options, "idmap") || slices.Contains(m.Options, "ridmap")
		hasMaps := len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0
		switch {
		case hasMaps && !idmap:
			return invalidf(field+".options", "uidMappings/gidMappings need the idmap or ridmap option")
		case hasMaps && len(m.UIDMappings) == 0:
			return invalidf(field+".uidMappings", "required with gidMappings")
		case hasMaps && len(m.GIDMappings) == 0:
			return invalidf(field+".gidMappings", "required with uidMappings")
		case idmap && !hasMaps && !v.private(specs.UserNamespace):
			return invalidf(field+".options", "idmap without uidMappings/gidMappings needs a user namespace")
		}
		if err := checkMappings(field+".uidMappings", m.UIDMappings); err != nil {
			return err
		}
		if err := checkMappings(field+".gidMappings", m.GIDMappings); err != nil {
			return err
		}
	}
	return nil
}

// checkMappings checks id mappings: each maps at least one id and no range
// runs past the uint32 id space.
func checkMappings(field string, maps []specs.LinuxIDMapping) error {
	for i, m := range maps {
		f := fmt.Sprintf("%s[%d]", field, i)
		if m.Size == 0 {
			return invalidf(f+".size", "must be greater than 0")
		}
		if uint64(m.ContainerID)+uint64(m.Size) > 1<<32 {
			return invalidf(f, "containerID %d + size %d is past the last id", m.ContainerID, m.Size)
		}
		if uint64(m.HostID)+uint64(m.Size) > 1<<32 {
			return invalidf(f, "hostID %d + size %d is past the last id", m.HostID, m.Size)
		}
	}
	return nil
}

func (v *validator) hooks() error {
	if v.s.Hooks == nil {
		return nil
	}
	if err := hook.Validate(v.s.Hooks); err != nil {
		return invalid("hooks", err)
	}
	return nil
}
