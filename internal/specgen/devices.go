package specgen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// hostDevDir is where HostDevices looks when Generate makes a privileged
// spec (a variable for tests).
var hostDevDir = "/dev"

// HostDevices lists the device nodes below dir (the host's /dev) as
// linux.devices entries with the node's type, numbers, mode and owner, as
// docker gives a --privileged container every host device. Left out: the
// directories the runtime mounts or that are not devices (pts, shm, fd,
// mqueue, and the hidden ones such as .udev), /dev/console (the runtime's
// or the container's terminal) and /dev/ptmx (the runtime links it to
// pts/ptmx of the container's own devpts). A node that vanishes while it
// is read is skipped.
func HostDevices(dir string) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != dir && (name[0] == '.' || name == "pts" || name == "shm" || name == "fd" || name == "mqueue") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "console" || rel == "ptmx" {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return fmt.Errorf("host device %s: %w", p, err)
		}
		typ := "c"
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			typ = "b"
		}
		mode := os.FileMode(st.Mode & 0o7777)
		uid, gid := st.Uid, st.Gid
		out = append(out, specs.LinuxDevice{
			Path: "/dev/" + filepath.ToSlash(rel), Type: typ,
			Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
			FileMode: &mode, UID: &uid, GID: &gid,
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list host devices in %s: %w", dir, err)
	}
	return out, nil
}
