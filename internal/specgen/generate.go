package specgen

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/internal/errdefs"
)

// Annotation keys Generate writes besides the image's labels.
const (
	// AnnotationStopSignal holds the image's StopSignal.
	AnnotationStopSignal = gantryv1.AnnotationStopSignal
	// AnnotationVolumes holds the image's Volumes as a sorted JSON array of
	// paths; they are recorded, not mounted (a later step maps them).
	AnnotationVolumes = "io.gantry.image.volumes"
)

// InitPath is where the init of Options.Init is mounted in the container.
const InitPath = gantryv1.InitPath

// DefaultPath is the PATH a process gets when neither the image nor the
// options set one.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Options are the user's choices for one container, layered over the image
// config. Zero values mean "as the image says" or "the default".
type Options struct {
	// Entrypoint, when non-nil, replaces the image's Entrypoint and drops
	// its Cmd (as docker's --entrypoint); an empty non-nil slice clears it.
	Entrypoint []string
	// Args, when non-nil, replaces the image's Cmd.
	Args []string
	// Env entries "KEY=VALUE" are added, replacing the image's KEY; an
	// entry "KEY" without '=' removes KEY.
	Env []string
	// User overrides the image's User (same forms: name, uid, uid:gid,
	// name:group, ...).
	User string
	// Cwd overrides the image's WorkingDir; it must be absolute.
	Cwd      string
	Tty      bool
	Hostname string
	// ReadOnly makes the root filesystem read-only.
	ReadOnly bool
	// EtcFiles are bind-mounted on /etc/hostname, /etc/hosts and
	// /etc/resolv.conf (a user's mount on one of them wins).
	EtcFiles EtcFiles
	// Privileged gives every capability, no seccomp filter, no masked or
	// read-only paths, all devices and a writable /sys.
	Privileged bool
	// CapAdd and CapDrop adjust the default capability set (see
	// Capabilities). Ignored when Privileged.
	CapAdd, CapDrop []string
	// Memory is the memory limit in bytes (0: none); a limit must be at
	// least MinMemory.
	Memory int64
	// CPUs is the number of CPUs of quota per period (0: none).
	CPUs float64
	// PidsLimit caps the number of tasks; 0 or negative (docker's -1)
	// means no limit.
	PidsLimit int64
	// NetworkMode is "" or "none" (a new network namespace with only
	// loopback) or "host" (the host's network namespace).
	NetworkMode string
	// Mounts are added after the defaults; one whose destination equals a
	// default mount's replaces it. A tmpfs mount gets docker's --tmpfs
	// defaults, noexec, nosuid and nodev, which its own options override
	// (exec, suid, dev; see TmpfsOptions).
	Mounts []specs.Mount
	// Annotations are added last and win over the image's labels.
	Annotations map[string]string
	// RootPath is the root filesystem's path in the bundle ("rootfs" if empty).
	RootPath string
	// Init, when set, is the absolute host path of gantry-init (docker's
	// --init): it is bind-mounted read-only at InitPath, after every other
	// mount, and process.args becomes InitPath, "--", then the command.
	Init string
}

// Generate builds the runtime spec of a container of img with opts.
// lookup reads the image's /etc/passwd and /etc/group to resolve the user;
// it may be nil for images without them (numeric users only).
func Generate(img ocispec.Image, lookup RootfsLookup, opts Options) (*specs.Spec, error) {
	cfg := img.Config
	if err := validateOptions(opts); err != nil {
		return nil, err
	}

	args, err := processArgs(cfg, opts)
	if err != nil {
		return nil, err
	}
	mounts := mergeMounts(append(defaultMounts(opts.Privileged), etcMounts(opts.EtcFiles, opts.ReadOnly)...), withTmpfsDefaults(opts.Mounts))
	if opts.Init != "" {
		args = append([]string{InitPath, "--"}, args...) // gantryv1.UserArgs undoes this
		mounts = append(mounts, specs.Mount{Destination: InitPath, Type: "bind", Source: opts.Init,
			Options: []string{"bind", "ro", "nosuid", "nodev"}})
	}
	userStr := cfg.User
	if opts.User != "" {
		userStr = opts.User
	}
	user, err := ResolveUser(userStr, lookup)
	if err != nil {
		return nil, fmt.Errorf("process.user: %w", err)
	}
	cwd := cfg.WorkingDir
	if opts.Cwd != "" {
		cwd = opts.Cwd
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return nil, fmt.Errorf("process.cwd %q: not absolute: %w", cwd, errdefs.ErrInvalidArgument)
	}
	env, err := mergeEnv(cfg.Env, opts.Env)
	if err != nil {
		return nil, err
	}
	env = setDefaultEnv(env, "PATH", DefaultPath)
	env = setDefaultEnv(env, "HOME", user.Home)
	if opts.Tty {
		env = setDefaultEnv(env, "TERM", "xterm")
	}
	if opts.Hostname != "" {
		env = setDefaultEnv(env, "HOSTNAME", opts.Hostname)
	}

	var caps []string
	if opts.Privileged {
		caps = slices.Clone(AllCapabilities)
	} else if caps, err = Capabilities(opts.CapAdd, opts.CapDrop); err != nil {
		return nil, fmt.Errorf("process.capabilities: %w", err)
	}

	namespaces := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace},
		{Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace},
		{Type: specs.MountNamespace},
	}
	switch opts.NetworkMode {
	case "", "none":
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	case "host":
	default:
		return nil, fmt.Errorf("network mode %q: want \"none\" or \"host\": %w", opts.NetworkMode, errdefs.ErrInvalidArgument)
	}
	namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})

	rootPath := opts.RootPath
	if rootPath == "" {
		rootPath = "rootfs"
	}
	spec := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: rootPath, Readonly: opts.ReadOnly},
		Hostname: opts.Hostname,
		Process: &specs.Process{
			Terminal: opts.Tty,
			User: specs.User{
				UID:            user.UID,
				GID:            user.GID,
				AdditionalGids: user.AdditionalGids,
			},
			Args: args,
			Env:  env,
			Cwd:  cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  slices.Clone(caps),
				Effective: slices.Clone(caps),
				Permitted: slices.Clone(caps),
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: false,
		},
		Mounts: mounts,
		Linux: &specs.Linux{
			Namespaces: namespaces,
			Resources:  resources(opts),
		},
	}
	if opts.Privileged {
		if spec.Linux.Devices, err = HostDevices(hostDevDir); err != nil {
			return nil, err
		}
	} else {
		spec.Linux.MaskedPaths = slices.Clone(DefaultMaskedPaths)
		spec.Linux.ReadonlyPaths = slices.Clone(DefaultReadonlyPaths)
		spec.Linux.Seccomp = DefaultSeccomp(caps)
	}
	spec.Annotations, err = annotations(cfg, opts.Annotations)
	if err != nil {
		return nil, err
	}
	return spec, nil
}

// MinMemory is the smallest memory limit, docker's: below it the kernel
// refuses the limit once the container's first process is charged, late
// and with an obscure error ("device or resource busy").
const MinMemory = 6 << 20

func validateOptions(opts Options) error {
	switch {
	case opts.Memory < 0:
		return fmt.Errorf("linux.resources.memory.limit %d: negative: %w", opts.Memory, errdefs.ErrInvalidArgument)
	case opts.Memory > 0 && opts.Memory < MinMemory:
		return fmt.Errorf("memory limit %d bytes: below the minimum allowed, 6MB: %w", opts.Memory, errdefs.ErrInvalidArgument)
	case opts.CPUs < 0 || (opts.CPUs > 0 && opts.CPUs < 0.01):
		return fmt.Errorf("cpus %g: want 0 or at least 0.01: %w", opts.CPUs, errdefs.ErrInvalidArgument)
	}
	if opts.Init != "" && !path.IsAbs(opts.Init) {
		return fmt.Errorf("init %q: not an absolute host path: %w", opts.Init, errdefs.ErrInvalidArgument)
	}
	for i, m := range opts.Mounts {
		if !path.IsAbs(m.Destination) {
			return fmt.Errorf("mounts[%d].destination %q: not absolute: %w", i, m.Destination, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// processArgs combines Entrypoint and Cmd as docker does.
func processArgs(cfg ocispec.ImageConfig, opts Options) ([]string, error) {
	entrypoint, cmd := cfg.Entrypoint, cfg.Cmd
	if opts.Entrypoint != nil {
		entrypoint, cmd = opts.Entrypoint, nil
	}
	if opts.Args != nil {
		cmd = opts.Args
	}
	args := append(slices.Clone(entrypoint), cmd...)
	if len(args) == 0 {
		return nil, fmt.Errorf("process.args: the image has no Entrypoint or Cmd and none was given: %w", errdefs.ErrInvalidArgument)
	}
	return args, nil
}

// mergeEnv layers the options' entries over the image's, keeping the
// image's order and appending new keys in the options' order.
func mergeEnv(image, extra []string) ([]string, error) {
	out := slices.Clone(image)
	index := func(key string) int {
		return slices.IndexFunc(out, func(e string) bool {
			k, _, _ := strings.Cut(e, "=")
			return k == key
		})
	}
	for _, e := range extra {
		key, _, hasValue := strings.Cut(e, "=")
		if key == "" {
			return nil, fmt.Errorf("process.env entry %q: empty name: %w", e, errdefs.ErrInvalidArgument)
		}
		i := index(key)
		switch {
		case !hasValue && i >= 0:
			out = slices.Delete(out, i, i+1)
		case !hasValue:
		case i >= 0:
			out[i] = e
		default:
			out = append(out, e)
		}
	}
	return out, nil
}

func setDefaultEnv(env []string, key, value string) []string {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return env
		}
	}
	return append(env, key+"="+value)
}

// DefaultMaskedPaths are hidden from unprivileged containers (docker's list).
var DefaultMaskedPaths = []string{
	"/proc/acpi",
	"/proc/asound",
	"/proc/interrupts",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/sched_debug",
	"/proc/scsi",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/sys/devices/virtual/powercap",
	"/sys/firmware",
}

// DefaultReadonlyPaths are read-only in unprivileged containers.
var DefaultReadonlyPaths = []string{
	"/proc/bus",
	"/proc/fs",
	"/proc/irq",
	"/proc/sys",
	"/proc/sysrq-trigger",
}

func defaultMounts(privileged bool) []specs.Mount {
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgroupOpts := []string{"nosuid", "noexec", "nodev", "relatime", "ro"}
	if privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev", "rw"}
		cgroupOpts = []string{"nosuid", "noexec", "nodev", "relatime", "rw"}
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgroupOpts},
	}
}

// mergeMounts appends extra to defaults, an extra mount replacing a default
// one with the same destination.
func mergeMounts(defaults, extra []specs.Mount) []specs.Mount {
	var out []specs.Mount
	for _, d := range defaults {
		replaced := slices.ContainsFunc(extra, func(m specs.Mount) bool {
			return path.Clean(m.Destination) == d.Destination
		})
		if !replaced {
			out = append(out, d)
		}
	}
	return append(out, extra...)
}

// etcMounts are the bind mounts of the EtcFiles that are set, read-only
// with a read-only root filesystem (as docker mounts them).
func etcMounts(f EtcFiles, readOnly bool) []specs.Mount {
	mode := "rw"
	if readOnly {
		mode = "ro"
	}
	var out []specs.Mount
	for _, m := range []struct{ dst, src string }{
		{"/etc/hostname", f.Hostname}, {"/etc/hosts", f.Hosts}, {"/etc/resolv.conf", f.ResolvConf},
	} {
		if m.src != "" {
			out = append(out, specs.Mount{Destination: m.dst, Type: "bind", Source: m.src,
				Options: []string{"rbind", "rprivate", "nosuid", "nodev", mode}})
		}
	}
	return out
}

// tmpfsDefaults are docker's options of a --tmpfs mount.
var tmpfsDefaults = []string{"noexec", "nosuid", "nodev"}

// withTmpfsDefaults returns mounts with TmpfsOptions applied to each tmpfs.
func withTmpfsDefaults(mounts []specs.Mount) []specs.Mount {
	out := slices.Clone(mounts)
	for i, m := range out {
		if m.Type == "tmpfs" {
			out[i].Options = TmpfsOptions(m.Options)
		}
	}
	return out
}

// tmpfsFlagKey names the setting a flag option of mount(8) changes, so
// that a later option overrides an earlier one about the same setting
// ("exec" overrides "noexec").
var tmpfsFlagKey = map[string]string{
	"ro": "rw", "rw": "rw",
	"exec": "exec", "noexec": "exec",
	"suid": "suid", "nosuid": "suid",
	"dev": "dev", "nodev": "dev",
	"sync": "sync", "async": "sync",
	"atime": "atime", "noatime": "atime",
	"diratime": "diratime", "nodiratime": "diratime",
	"relatime": "relatime", "norelatime": "relatime",
	"strictatime": "strictatime", "nostrictatime": "strictatime",
}

// TmpfsOptions returns the options of a tmpfs mount as docker sets them
// for --tmpfs: noexec, nosuid and nodev first, then opts, a later option
// winning over an earlier one about the same setting ("exec" over
// "noexec", the last "size=" of several); size is only there when given.
// The order of what is kept is the order given.
func TmpfsOptions(opts []string) []string {
	all := append(slices.Clone(tmpfsDefaults), opts...)
	seen := map[string]bool{}
	var kept []string
	for i := len(all) - 1; i >= 0; i-- {
		o := all[i]
		key, isFlag := tmpfsFlagKey[o]
		if !isFlag {
			key, _, _ = strings.Cut(o, "=")
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		kept = append(kept, o)
	}
	slices.Reverse(kept)
	return kept
}

func int64p(v int64) *int64    { return &v }
func uint64p(v uint64) *uint64 { return &v }

func resources(opts Options) *specs.LinuxResources {
	r := &specs.LinuxResources{}
	if opts.Privileged {
		r.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	} else {
		dev := func(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
			d := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
			if major >= 0 {
				d.Major = int64p(major)
			}
			if minor >= 0 {
				d.Minor = int64p(minor)
			}
			return d
		}
		r.Devices = []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			dev("c", -1, -1, "m"),    // mknod of any char device
			dev("b", -1, -1, "m"),    // mknod of any block device
			dev("c", 1, 3, "rwm"),    // /dev/null
			dev("c", 1, 5, "rwm"),    // /dev/zero
			dev("c", 1, 7, "rwm"),    // /dev/full
			dev("c", 1, 8, "rwm"),    // /dev/random
			dev("c", 1, 9, "rwm"),    // /dev/urandom
			dev("c", 5, 0, "rwm"),    // /dev/tty
			dev("c", 5, 1, "rwm"),    // /dev/console
			dev("c", 5, 2, "rwm"),    // /dev/ptmx
			dev("c", 136, -1, "rwm"), // /dev/pts/*
			dev("c", 10, 200, "rwm"), // /dev/net/tun
		}
	}
	if opts.Memory > 0 {
		r.Memory = &specs.LinuxMemory{Limit: int64p(opts.Memory)}
	}
	if opts.CPUs > 0 {
		const period = 100000
		r.CPU = &specs.LinuxCPU{Period: uint64p(period), Quota: int64p(int64(opts.CPUs * period))}
	}
	if opts.PidsLimit > 0 {
		r.Pids = &specs.LinuxPids{Limit: int64p(opts.PidsLimit)}
	}
	return r
}

func annotations(cfg ocispec.ImageConfig, extra map[string]string) (map[string]string, error) {
	out := map[string]string{}
	maps.Copy(out, cfg.Labels)
	if cfg.StopSignal != "" {
		out[AnnotationStopSignal] = cfg.StopSignal
	}
	if vols := Volumes(cfg); len(vols) > 0 {
		b, err := json.Marshal(vols)
		if err != nil {
			return nil, fmt.Errorf("annotations: encode volumes: %w", err)
		}
		out[AnnotationVolumes] = string(b)
	}
	maps.Copy(out, extra)
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Volumes returns the image's volume paths, cleaned and sorted.
func Volumes(cfg ocispec.ImageConfig) []string {
	var out []string
	for v := range cfg.Volumes {
		out = append(out, path.Clean(v))
	}
	sort.Strings(out)
	return slices.Compact(out)
}
