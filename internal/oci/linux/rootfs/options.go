package rootfs

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// MountOptions is the parsed form of a spec mount's options (pure, no syscalls).
type MountOptions struct {
	Flags       uintptr   // MS_* to set (ro, nosuid, nodev, noexec, sync, dirsync, remount, mand, noatime, nodiratime, relatime, strictatime, bind, rbind->MS_BIND|MS_REC, ...)
	ClearFlags  uintptr   // flags that a "rw", "suid", "dev", "exec", "atime", ... option clears
	Propagation []uintptr // MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE, optionally |MS_REC
	// AttrSet holds recursive mount_setattr attributes from "rro", "rnosuid",
	// "rnodev", "rnoexec", "rnoatime", "rrelatime", "rstrictatime",
	// "rnodiratime", "rnosymfollow".
	AttrSet uint64
	// AttrClr holds the attributes cleared by "rrw", "rsuid", "rdev",
	// "rexec", "ratime", "rdiratime", "rsymfollow". Any recursive atime
	// option also puts the whole MOUNT_ATTR__ATIME mask here, as the kernel
	// requires to change the atime mode.
	AttrClr   uint64
	Data      string // everything else (unknown options), comma-joined, passed as mount data
	Idmap     bool   // "idmap" / "ridmap" option
	Recursive bool   // rbind / ridmap
}

type flagOption struct {
	clear bool
	flag  uintptr
}

// flagOptions maps the mount(8) flag options to MS_* flags.
var flagOptions = map[string]flagOption{
	"defaults":      {false, 0},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"nosuid":        {false, unix.MS_NOSUID},
	"suid":          {true, unix.MS_NOSUID},
	"nodev":         {false, unix.MS_NODEV},
	"dev":           {true, unix.MS_NODEV},
	"noexec":        {false, unix.MS_NOEXEC},
	"exec":          {true, unix.MS_NOEXEC},
	"sync":          {false, unix.MS_SYNCHRONOUS},
	"async":         {true, unix.MS_SYNCHRONOUS},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"remount":       {false, unix.MS_REMOUNT},
	"mand":          {false, unix.MS_MANDLOCK},
	"nomand":        {true, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"atime":         {true, unix.MS_NOATIME},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"diratime":      {true, unix.MS_NODIRATIME},
	"relatime":      {false, unix.MS_RELATIME},
	"norelatime":    {true, unix.MS_RELATIME},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"bind":          {false, unix.MS_BIND},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"silent":        {false, unix.MS_SILENT},
	"loud":          {true, unix.MS_SILENT},
	"iversion":      {false, unix.MS_I_VERSION},
	"noiversion":    {true, unix.MS_I_VERSION},
	"lazytime":      {false, unix.MS_LAZYTIME},
	"nolazytime":    {true, unix.MS_LAZYTIME},
	"nosymfollow":   {false, unix.MS_NOSYMFOLLOW},
	"symfollow":     {true, unix.MS_NOSYMFOLLOW},
}

// propagationOptions maps the propagation options to MS_* flags.
var propagationOptions = map[string]uintptr{
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

type attrOption struct {
	set, clr uint64
}

// attrOptions maps the recursive (mount_setattr) options to MOUNT_ATTR_*.
var attrOptions = map[string]attrOption{
	"rro":          {set: unix.MOUNT_ATTR_RDONLY},
	"rrw":          {clr: unix.MOUNT_ATTR_RDONLY},
	"rnosuid":      {set: unix.MOUNT_ATTR_NOSUID},
	"rsuid":        {clr: unix.MOUNT_ATTR_NOSUID},
	"rnodev":       {set: unix.MOUNT_ATTR_NODEV},
	"rdev":         {clr: unix.MOUNT_ATTR_NODEV},
	"rnoexec":      {set: unix.MOUNT_ATTR_NOEXEC},
	"rexec":        {clr: unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":  {set: unix.MOUNT_ATTR_NODIRATIME},
	"rdiratime":    {clr: unix.MOUNT_ATTR_NODIRATIME},
	"rnosymfollow": {set: unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow":   {clr: unix.MOUNT_ATTR_NOSYMFOLLOW},
	// The atime mode is one value: changing it needs the whole mask in
	// attr_clr and the new mode in attr_set. "ratime" goes back to the
	// kernel default, relatime.
	"rnoatime":     {set: unix.MOUNT_ATTR_NOATIME, clr: unix.MOUNT_ATTR__ATIME},
	"rrelatime":    {set: unix.MOUNT_ATTR_RELATIME, clr: unix.MOUNT_ATTR__ATIME},
	"rstrictatime": {set: unix.MOUNT_ATTR_STRICTATIME, clr: unix.MOUNT_ATTR__ATIME},
	"ratime":       {set: unix.MOUNT_ATTR_RELATIME, clr: unix.MOUNT_ATTR__ATIME},
}

// ParseMountOptions parses the options of one spec mount. Later options win
// over earlier ones for the same flag ("ro,rw" is read-write). Options it
// does not know are kept, in order, as mount data. Empty options are
// skipped. It fails (wrapping errdefs.ErrInvalidArgument) only for a
// malformed option: one holding a comma or a NUL byte, or a "=value" with no
// key.
func ParseMountOptions(opts []string) (MountOptions, error) {
	var (
		mo   MountOptions
		data []string
	)
	for i, o := range opts {
		if o == "" {
			continue
		}
		if strings.ContainsAny(o, ",\x00") || strings.HasPrefix(o, "=") {
			return MountOptions{}, fmt.Errorf("option %d %q: malformed: %w", i, o, errdefs.ErrInvalidArgument)
		}
		if f, ok := flagOptions[o]; ok {
			if f.clear {
				mo.Flags &^= f.flag
				mo.ClearFlags |= f.flag
			} else {
				mo.Flags |= f.flag
				mo.ClearFlags &^= f.flag
			}
			if o == "rbind" {
				mo.Recursive = true
			}
			continue
		}
		if p, ok := propagationOptions[o]; ok {
			mo.Propagation = append(mo.Propagation, p)
			continue
		}
		if a, ok := attrOptions[o]; ok {
			if a.clr == unix.MOUNT_ATTR__ATIME {
				// A new atime mode replaces any earlier one.
				mo.AttrSet &^= unix.MOUNT_ATTR__ATIME
			}
			mo.AttrSet = mo.AttrSet&^a.clr | a.set
			mo.AttrClr = mo.AttrClr&^a.set | a.clr
			continue
		}
		switch o {
		case "idmap":
			mo.Idmap = true
			continue
		case "ridmap":
			mo.Idmap = true
			mo.Recursive = true
			continue
		case "tmpcopyup":
			// runc extension, not supported: ignored rather than handed
			// to the file system, which would refuse it.
			continue
		}
		data = append(data, o)
	}
	mo.Data = strings.Join(data, ",")
	return mo, nil
}
