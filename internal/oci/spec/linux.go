package spec

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/linux/cgroup"
	"github.com/gantry-project/gantry/internal/oci/linux/sched"
	"github.com/gantry-project/gantry/internal/oci/linux/seccomp"
)

// nsFiles maps each namespace type to its name under /proc/<pid>/ns.
var nsFiles = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace:     "pid",
	specs.NetworkNamespace: "net",
	specs.MountNamespace:   "mnt",
	specs.IPCNamespace:     "ipc",
	specs.UTSNamespace:     "uts",
	specs.UserNamespace:    "user",
	specs.CgroupNamespace:  "cgroup",
	specs.TimeNamespace:    "time",
}

// procSelfNS is where the runtime's own namespaces are; a variable so that
// tests can point it elsewhere.
var procSelfNS = "/proc/self/ns"

// namespaces checks linux.namespaces and records them for the checks that
// depend on them.
func (v *validator) namespaces() error {
	l := v.linux()
	for i, n := range l.Namespaces {
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		file, ok := nsFiles[n.Type]
		if !ok {
			return invalidf(field+".type", "unknown namespace type %q", n.Type)
		}
		if prev, dup := v.ns[n.Type]; dup {
			return invalidf(field+".type", "%s is already given by linux.namespaces[%d]", n.Type, prev.index)
		}
		e := &nsEntry{index: i, path: n.Path}
		v.ns[n.Type] = e
		// The kernel must know the type; /proc/self/ns lists those it has.
		if _, err := os.Stat(procSelfNS); err == nil {
			if _, err := os.Lstat(filepath.Join(procSelfNS, file)); errors.Is(err, fs.ErrNotExist) {
				return &fieldError{field: field + ".type", kind: errdefs.ErrFailedPrecondition,
					err: fmt.Errorf("the kernel has no %s namespaces", n.Type)}
			}
		}
		if n.Path == "" {
			continue
		}
		if !filepath.IsAbs(n.Path) {
			return invalidf(field+".path", "%q is not an absolute path", n.Path)
		}
		fi, err := os.Stat(n.Path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return invalidf(field+".path", "%q does not exist", n.Path)
			}
			return invalid(field+".path", err)
		}
		if own, err := os.Stat(filepath.Join(procSelfNS, file)); err == nil && os.SameFile(fi, own) {
			e.host = true
		}
	}
	if e, ok := v.ns[specs.UserNamespace]; ok && e.path == "" {
		if len(l.UIDMappings) == 0 {
			return invalidf("linux.uidMappings", "required for a new user namespace")
		}
		if len(l.GIDMappings) == 0 {
			return invalidf("linux.gidMappings", "required for a new user namespace")
		}
	}
	return nil
}

// idMappings checks linux.uidMappings and linux.gidMappings.
func (v *validator) idMappings() error {
	l := v.linux()
	if len(l.UIDMappings)+len(l.GIDMappings) > 0 {
		if _, ok := v.ns[specs.UserNamespace]; !ok {
			field := "linux.uidMappings"
			if len(l.UIDMappings) == 0 {
				field = "linux.gidMappings"
			}
			return invalidf(field, "needs a user namespace in linux.namespaces")
		}
	}
	if err := checkMappings("linux.uidMappings", l.UIDMappings); err != nil {
		return err
	}
	return checkMappings("linux.gidMappings", l.GIDMappings)
}

// timeOffsets checks linux.timeOffsets: only for a new time namespace, and
// only the clocks a time namespace offsets.
func (v *validator) timeOffsets() error {
	offs := v.linux().TimeOffsets
	if len(offs) == 0 {
		return nil
	}
	e, ok := v.ns[specs.TimeNamespace]
	if !ok {
		return invalidf("linux.timeOffsets", "needs a time namespace in linux.namespaces")
	}
	if e.path != "" {
		return invalidf("linux.timeOffsets", "cannot be set when joining the time namespace at linux.namespaces[%d].path", e.index)
	}
	for _, clock := range sortedKeys(offs) {
		if clock != "monotonic" && clock != "boottime" {
			return invalidf("linux.timeOffsets."+clock, "unknown clock (want monotonic or boottime)")
		}
		if offs[clock].Nanosecs >= 1e9 {
			return invalidf("linux.timeOffsets."+clock+".nanosecs", "%d is not below one second", offs[clock].Nanosecs)
		}
	}
	return nil
}

// devices checks linux.devices.
func (v *validator) devices() error {
	seen := map[string]int{}
	for i, d := range v.linux().Devices {
		field := fmt.Sprintf("linux.devices[%d]", i)
		switch d.Type {
		case "c", "b", "u":
			if d.Major < 0 {
				return invalidf(field+".major", "%d is negative", d.Major)
			}
			if d.Minor < 0 {
				return invalidf(field+".minor", "%d is negative", d.Minor)
			}
		case "p":
			// A FIFO has no device numbers.
		case "":
			return invalidf(field+".type", "required")
		default:
			return invalidf(field+".type", "unknown device type %q (want c, b, u or p)", d.Type)
		}
		if d.Path == "" {
			return invalidf(field+".path", "required")
		}
		// The spec allows devices anywhere in the container, not only
		// under /dev, but the path must be absolute.
		if !filepath.IsAbs(d.Path) {
			return invalidf(field+".path", "%q is not an absolute path", d.Path)
		}
		p := filepath.Clean(d.Path)
		if p == "/" {
			return invalidf(field+".path", "%q is the root directory", d.Path)
		}
		if j, dup := seen[p]; dup {
			return invalidf(field+".path", "%q is already used by linux.devices[%d]", d.Path, j)
		}
		seen[p] = i
	}
	return nil
}

// netDevices checks linux.netDevices: valid interface names, moved into a
// network namespace of the container's own.
func (v *validator) netDevices() error {
	nd := v.linux().NetDevices
	if len(nd) == 0 {
		return nil
	}
	if !v.private(specs.NetworkNamespace) {
		return invalidf("linux.netDevices", "needs its own network namespace in linux.namespaces")
	}
	names := map[string]string{}
	for _, host := range sortedKeys(nd) {
		field := "linux.netDevices." + host
		if err := checkIfName(host, false); err != nil {
			return invalid(field, err)
		}
		name := nd[host].Name
		if name == "" {
			name = host
		}
		if err := checkIfName(name, true); err != nil {
			return invalid(field+".name", err)
		}
		if other, dup := names[name]; dup && !strings.Contains(name, "%d") {
			return invalidf(field+".name", "%q is also the name of linux.netDevices.%s", name, other)
		}
		names[name] = host
	}
	return nil
}

// checkIfName checks a network interface name as the kernel's
// dev_valid_name does; template allows a "%d" for the kernel to fill in.
func checkIfName(name string, template bool) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%q is not a valid interface name", name)
	}
	if len(name) > 15 {
		return fmt.Errorf("interface name %q is longer than 15 bytes", name)
	}
	if strings.ContainsAny(name, "/: \t\n\r\v\f\x00") {
		return fmt.Errorf("interface name %q contains '/', ':', a space or a NUL byte", name)
	}
	if !template && strings.Contains(name, "%") {
		return fmt.Errorf("interface name %q contains '%%'", name)
	}
	return nil
}

// cgroups checks linux.cgroupsPath and linux.resources.
func (v *validator) cgroups() error {
	l := v.linux()
	if err := checkCgroupsPath(l.CgroupsPath); err != nil {
		return invalid("linux.cgroupsPath", err)
	}
	if l.Resources != nil {
		if err := cgroup.Validate(l.Resources); err != nil {
			return invalid("linux.resources", err)
		}
	}
	return nil
}

// checkCgroupsPath accepts an absolute path, a relative path, or the
// systemd form "slice:prefix:name"; none may step up with "..".
func checkCgroupsPath(p string) error {
	if p == "" {
		return nil
	}
	if strings.ContainsAny(p, "\x00\n") {
		return fmt.Errorf("%q contains a NUL byte or a newline", p)
	}
	if !strings.HasPrefix(p, "/") && strings.Count(p, ":") == 2 {
		parts := strings.Split(p, ":")
		slice, prefix, name := parts[0], parts[1], parts[2]
		if slice != "" && (!strings.HasSuffix(slice, ".slice") || strings.Contains(slice, "/")) {
			return fmt.Errorf("%q: systemd slice %q must be a name ending in .slice", p, slice)
		}
		if strings.Contains(prefix, "/") || name == "" || strings.Contains(name, "/") {
			return fmt.Errorf("%q: want the systemd form slice:prefix:name", p)
		}
		return nil
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("%q must not contain \"..\"", p)
		}
	}
	return nil
}

// sysctlIPC are the IPC-namespaced sysctl prefixes.
var sysctlIPC = []string{"kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue."}

// sysctl checks linux.sysctl: only namespaced keys, each with a namespace of
// the container's own, as runc does; a host-wide key would change the host.
func (v *validator) sysctl() error {
	sc := v.linux().Sysctl
	for _, key := range sortedKeys(sc) {
		field := fmt.Sprintf("linux.sysctl[%q]", key)
		k := strings.ReplaceAll(key, "/", ".")
		for _, el := range strings.Split(k, ".") {
			if el == "" {
				return invalidf(field, "malformed key")
			}
		}
		var need specs.LinuxNamespaceType
		switch {
		case strings.HasPrefix(k, "net."):
			need = specs.NetworkNamespace
		case k == "kernel.hostname" || k == "kernel.domainname":
			need = specs.UTSNamespace
			name, spec := "hostname", v.s.Hostname
			if k == "kernel.domainname" {
				name, spec = "domainname", v.s.Domainname
			}
			if spec != "" && sc[key] != spec {
				return invalidf(field, "%q conflicts with %s %q", sc[key], name, spec)
			}
		default:
			for _, p := range sysctlIPC {
				if strings.HasPrefix(k, p) {
					need = specs.IPCNamespace
				}
			}
		}
		if need == "" {
			return invalidf(field, "not a namespaced sysctl: setting it would change the host")
		}
		if !v.private(need) {
			return invalidf(field, "needs its own %s namespace in linux.namespaces", need)
		}
	}
	return nil
}

func (v *validator) seccomp() error {
	if sc := v.linux().Seccomp; sc != nil {
		if err := seccomp.Validate(sc); err != nil {
			return invalid("linux.seccomp", err)
		}
	}
	return nil
}

// propagations are the accepted linux.rootfsPropagation values.
var propagations = []string{"shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable"}

// linuxPaths checks rootfsPropagation, maskedPaths and readonlyPaths.
func (v *validator) linuxPaths() error {
	l := v.linux()
	if p := l.RootfsPropagation; p != "" && !slices.Contains(propagations, p) {
		return invalidf("linux.rootfsPropagation", "unknown propagation %q (want one of %s)", p, strings.Join(propagations, ", "))
	}
	for _, f := range []struct {
		field string
		paths []string
	}{
		{"linux.maskedPaths", l.MaskedPaths},
		{"linux.readonlyPaths", l.ReadonlyPaths},
	} {
		for i, p := range f.paths {
			if !filepath.IsAbs(p) {
				return invalidf(fmt.Sprintf("%s[%d]", f.field, i), "%q is not an absolute path", p)
			}
		}
	}
	return nil
}

func (v *validator) personality() error {
	p := v.linux().Personality
	if p == nil {
		return nil
	}
	switch p.Domain {
	case specs.PerLinux, specs.PerLinux32:
	case "":
		return invalidf("linux.personality.domain", "required")
	default:
		return invalidf("linux.personality.domain", "unknown domain %q (want LINUX or LINUX32)", p.Domain)
	}
	if len(p.Flags) > 0 {
		return invalidf("linux.personality.flags[0]", "unknown flag %q (no flags are defined)", p.Flags[0])
	}
	return nil
}

// resctrlMounted reports whether a resctrl file system is mounted in the
// runtime's mount namespace; a variable so that tests can replace it.
var resctrlMounted = func() bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// "... - <fstype> <source> <super options>"
		_, after, ok := strings.Cut(sc.Text(), " - ")
		if ok && strings.HasPrefix(after, "resctrl ") {
			return true
		}
	}
	return false
}

// intelRdt checks linux.intelRdt, which needs a mounted resctrl.
func (v *validator) intelRdt() error {
	r := v.linux().IntelRdt
	if r == nil {
		return nil
	}
	if id := r.ClosID; id != "" && id != "/" {
		if id == "." || id == ".." || strings.ContainsAny(id, "/\n\x00") {
			return invalidf("linux.intelRdt.closID", "%q is not a resctrl group name", id)
		}
	}
	if strings.Contains(r.L3CacheSchema, "\n") {
		return invalidf("linux.intelRdt.l3CacheSchema", "contains a newline")
	}
	if s := r.MemBwSchema; s != "" {
		if !strings.HasPrefix(s, "MB:") {
			return invalidf("linux.intelRdt.memBwSchema", "%q does not start with \"MB:\"", s)
		}
		if strings.Contains(s, "\n") {
			return invalidf("linux.intelRdt.memBwSchema", "contains a newline")
		}
	}
	for i, s := range r.Schemata {
		if strings.Contains(s, "\n") {
			return invalidf(fmt.Sprintf("linux.intelRdt.schemata[%d]", i), "contains a newline")
		}
	}
	if !resctrlMounted() {
		return &fieldError{field: "linux.intelRdt", kind: errdefs.ErrFailedPrecondition,
			err: errors.New("needs a mounted resctrl file system (mount -t resctrl resctrl /sys/fs/resctrl), and none is mounted")}
	}
	return nil
}

// memoryPolicy checks linux.memoryPolicy as set_mempolicy(2) would.
func (v *validator) memoryPolicy() error {
	mp := v.linux().MemoryPolicy
	if mp == nil {
		return nil
	}
	var needNodes, noNodes bool
	switch mp.Mode {
	case specs.MpolDefault, specs.MpolLocal:
		noNodes = true
	case specs.MpolBind, specs.MpolInterleave, specs.MpolWeightedInterleave, specs.MpolPreferredMany:
		needNodes = true
	case specs.MpolPreferred:
	case "":
		return invalidf("linux.memoryPolicy.mode", "required")
	default:
		return invalidf("linux.memoryPolicy.mode", "unknown mode %q", mp.Mode)
	}
	switch {
	case noNodes && mp.Nodes != "":
		return invalidf("linux.memoryPolicy.nodes", "must be empty for %s", mp.Mode)
	case needNodes && mp.Nodes == "":
		return invalidf("linux.memoryPolicy.nodes", "required for %s", mp.Mode)
	case mp.Nodes != "":
		if _, err := sched.ParseCPUList(mp.Nodes); err != nil {
			return invalidf("linux.memoryPolicy.nodes", "%q is not a node list such as 0-3,7", mp.Nodes)
		}
	}
	var static, relative bool
	for i, f := range mp.Flags {
		switch f {
		case specs.MpolFStaticNodes:
			static = true
		case specs.MpolFRelativeNodes:
			relative = true
		case specs.MpolFNumaBalancing:
		default:
			return invalidf(fmt.Sprintf("linux.memoryPolicy.flags[%d]", i), "unknown flag %q", f)
		}
	}
	if static && relative {
		return invalidf("linux.memoryPolicy.flags", "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other")
	}
	if (static || relative) && noNodes {
		return invalidf("linux.memoryPolicy.flags", "node flags make no sense with %s", mp.Mode)
	}
	return nil
}

// sortedKeys returns m's keys in order, so that the first error is stable.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
