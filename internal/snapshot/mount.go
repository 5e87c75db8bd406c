package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// maxMountData is the most mount(2) copies of the data argument: one page
// (the kernel silently truncates, which overlayfs reports as a bad option).
var maxMountData = os.Getpagesize() - 1

// mountFlags maps the flag-like options to mount(2) flags; set reports
// whether the option sets (true) or clears (false) the flag.
var mountFlags = map[string]struct {
	set  bool
	flag uintptr
}{
	"ro":          {true, unix.MS_RDONLY},
	"rw":          {false, unix.MS_RDONLY},
	"bind":        {true, unix.MS_BIND},
	"rbind":       {true, unix.MS_BIND | unix.MS_REC},
	"nosuid":      {true, unix.MS_NOSUID},
	"suid":        {false, unix.MS_NOSUID},
	"nodev":       {true, unix.MS_NODEV},
	"dev":         {false, unix.MS_NODEV},
	"noexec":      {true, unix.MS_NOEXEC},
	"exec":        {false, unix.MS_NOEXEC},
	"noatime":     {true, unix.MS_NOATIME},
	"atime":       {false, unix.MS_NOATIME},
	"relatime":    {true, unix.MS_RELATIME},
	"norelatime":  {false, unix.MS_RELATIME},
	"nodiratime":  {true, unix.MS_NODIRATIME},
	"sync":        {true, unix.MS_SYNCHRONOUS},
	"async":       {false, unix.MS_SYNCHRONOUS},
	"remount":     {true, unix.MS_REMOUNT},
	"defaults":    {false, 0},
	"strictatime": {true, unix.MS_STRICTATIME},
}

// parseOptions splits options into mount(2) flags and the comma-joined data.
func parseOptions(options []string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range options {
		f, ok := mountFlags[o]
		if !ok {
			data = append(data, o)
			continue
		}
		if f.set {
			flags |= f.flag
		} else {
			flags &^= f.flag
		}
	}
	return flags, strings.Join(data, ",")
}

// MountAll mounts every mount in order on target. A "bind" mount with "ro"
// (or other per-mount flags) is bound first and then remounted with them,
// as the kernel ignores them on the first call. An overlay mount whose data
// exceeds one page is mounted with its directories relative to their common
// parent (see mountOverlayCompact). If one mount fails, those already made
// are unmounted again.
func MountAll(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := mountOne(m, target); err != nil {
			for j := 0; j < i; j++ {
				_ = unix.Unmount(target, unix.MNT_DETACH)
			}
			return err
		}
	}
	return nil
}

func mountOne(m Mount, target string) error {
	flags, data := parseOptions(m.Options)
	if m.Type == "overlay" && len(data) > maxMountData {
		if err := mountOverlayCompact(m.Source, target, flags, m.Options); err != nil {
			return fmt.Errorf("mount overlay on %q: %w", target, err)
		}
		return nil
	}
	typ := m.Type
	if flags&unix.MS_BIND != 0 {
		typ = ""
	}
	if err := unix.Mount(m.Source, target, typ, flags, data); err != nil {
		return fmt.Errorf("mount %s %q on %q (options %q): %w", m.Type, m.Source, target, strings.Join(m.Options, ","), err)
	}
	const perMount = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME
	if flags&unix.MS_BIND != 0 && flags&perMount != 0 {
		rflags := unix.MS_REMOUNT | unix.MS_BIND | (flags & perMount)
		if err := unix.Mount("", target, "", rflags, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("remount bind %q with %q: %w", target, strings.Join(m.Options, ","), err)
		}
	}
	return nil
}

// overlayDirKeys are the overlay options that name directories.
var overlayDirKeys = []string{"lowerdir", "upperdir", "workdir"}

// mountOverlayCompact mounts an overlay whose data is too long for one page.
// overlayfs resolves its directory options relative to the working directory
// of the calling thread, so the directories are rewritten relative to their
// longest common parent and the mount is made from a thread that has its own
// working directory (unshare(CLONE_FS) on a locked thread that then exits,
// so the rest of the process never sees the chdir).
func mountOverlayCompact(source, target string, flags uintptr, options []string) error {
	var dirs []string
	for _, o := range options {
		for _, k := range overlayDirKeys {
			if v, ok := strings.CutPrefix(o, k+"="); ok {
				if k == "lowerdir" {
					dirs = append(dirs, strings.Split(v, ":")...)
				} else {
					dirs = append(dirs, v)
				}
			}
		}
	}
	base := commonDir(dirs)
	if base == "" || base == "/" {
		return fmt.Errorf("overlay options are %d bytes (more than %d) and the directories share no parent: %w", optionsLen(options), maxMountData, unix.E2BIG)
	}
	absTarget, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	var rel []string
	for _, o := range options {
		if _, ok := mountFlags[o]; ok {
			continue
		}
		for _, k := range overlayDirKeys {
			if v, ok := strings.CutPrefix(o, k+"="); ok {
				parts := strings.Split(v, ":")
				for i, p := range parts {
					parts[i] = strings.TrimPrefix(strings.TrimPrefix(p, base), "/")
				}
				o = k + "=" + strings.Join(parts, ":")
			}
		}
		rel = append(rel, o)
	}
	data := strings.Join(rel, ",")
	if len(data) > maxMountData {
		return fmt.Errorf("overlay options are %d bytes even relative to %q (limit %d): %w", len(data), base, maxMountData, unix.E2BIG)
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it exits with the goroutine, taking
		// its private working directory with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare CLONE_FS: %w", err)
			return
		}
		if err := unix.Chdir(base); err != nil {
			errc <- fmt.Errorf("chdir %q: %w", base, err)
			return
		}
		if err := unix.Mount(source, absTarget, "overlay", flags, data); err != nil {
			errc <- fmt.Errorf("mount relative to %q (%d bytes of options): %w", base, len(data), err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

func optionsLen(options []string) int {
	_, data := parseOptions(options)
	return len(data)
}

// commonDir returns the longest directory that contains every path.
func commonDir(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	common := filepath.Clean(paths[0])
	for _, p := range paths[1:] {
		p = filepath.Clean(p)
		for common != "/" && common != "." && p != common && !strings.HasPrefix(p, common+"/") {
			common = filepath.Dir(common)
		}
	}
	if common == filepath.Clean(paths[0]) && len(paths) == 1 {
		common = filepath.Dir(common)
	}
	// A path equal to common would become "" relative to it: step up.
	for _, p := range paths {
		if filepath.Clean(p) == common {
			common = filepath.Dir(common)
			break
		}
	}
	return common
}

// UnmountAll unmounts every mount stacked on target, topmost first, until
// target is no longer a mount point. A missing target is not an error.
func UnmountAll(target string) error {
	for {
		err := unix.Unmount(target, 0)
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			// Not a mount point (any more), or gone.
			return nil
		case errors.Is(err, unix.EBUSY):
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount %q (detach): %w", target, err)
			}
		default:
			return fmt.Errorf("unmount %q: %w", target, err)
		}
	}
}
