package spec

import (
	"runtime/debug"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/gantry-project/gantry/internal/oci/linux/capability"
	"github.com/gantry-project/gantry/internal/oci/linux/label"
	"github.com/gantry-project/gantry/internal/oci/linux/rootfs"
	"github.com/gantry-project/gantry/internal/oci/linux/seccomp"
)

// VersionAnnotation is the features annotation holding gantry-oci's version.
const VersionAnnotation = "io.gantry.oci.version"

// mountOptionCandidates are the option names of config.md's table (plus
// their recursive forms); Features lists those ParseMountOptions handles
// itself rather than passing them to the file system as data.
var mountOptionCandidates = []string{
	"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
	"iversion", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime",
	"noexec", "noiversion", "nolazytime", "nomand", "norelatime",
	"nostrictatime", "nosuid", "nosymfollow", "private", "ratime", "rbind",
	"rdev", "rdiratime", "relatime", "remount", "rexec", "rnoatime",
	"rnodev", "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime",
	"rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw",
	"rshared", "rslave", "rstrictatime", "rsuid", "rsymfollow",
	"runbindable", "rw", "shared", "silent", "slave", "strictatime", "suid",
	"symfollow", "sync", "unbindable", "idmap", "ridmap",
}

// seccompFlags are the filter flags runtime-spec defines.
var seccompFlags = []specs.LinuxSeccompFlag{
	"SECCOMP_FILTER_FLAG_TSYNC",
	specs.LinuxSeccompFlagLog,
	specs.LinuxSeccompFlagSpecAllow,
	specs.LinuxSeccompFlagWaitKillableRecv,
}

// Features returns the runtime-spec features document for `gantry-oci
// features`, describing what gantry-oci implements on this build and host.
func Features() *features.Features {
	t, f := true, false
	seccompEnabled := seccomp.Enabled()
	apparmor := label.AppArmorEnabled()
	selinux := label.SELinuxEnabled()
	rdt := resctrlMounted()

	var nss []string
	for _, t := range []specs.LinuxNamespaceType{
		specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace,
		specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace,
	} {
		nss = append(nss, string(t))
	}

	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  knownMountOptions(),
		Linux: &features.Linux{
			Namespaces:   nss,
			Capabilities: capability.Known(),
			Cgroup: &features.Cgroup{
				V1:          &t,
				V2:          &t,
				Systemd:     &f,
				SystemdUser: &f,
				Rdma:        &t,
			},
			Seccomp: &features.Seccomp{
				Enabled:        &seccompEnabled,
				Actions:        seccomp.SupportedActions(),
				Operators:      seccomp.SupportedOperators(),
				Archs:          seccomp.SupportedArchs(),
				KnownFlags:     knownSeccompFlags(),
				SupportedFlags: seccomp.SupportedFlags(),
			},
			Apparmor: &features.Apparmor{Enabled: &apparmor},
			Selinux:  &features.Selinux{Enabled: &selinux},
			IntelRdt: &features.IntelRdt{Enabled: &rdt},
			MountExtensions: &features.MountExtensions{
				IDMap: &features.IDMap{Enabled: &t},
			},
		},
		Annotations: map[string]string{VersionAnnotation: buildVersion()},
	}
}

// knownMountOptions lists the candidates ParseMountOptions takes as
// options of its own: accepted, and not left over as file-system data.
func knownMountOptions() []string {
	var known []string
	for _, o := range mountOptionCandidates {
		mo, err := rootfs.ParseMountOptions([]string{o})
		if err == nil && mo.Data == "" {
			known = append(known, o)
		}
	}
	return known
}

// knownSeccompFlags lists the runtime-spec filter flags seccomp.Validate
// accepts.
func knownSeccompFlags() []string {
	var known []string
	for _, fl := range seccompFlags {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{fl}}
		if seccomp.Validate(s) == nil {
			known = append(known, string(fl))
		}
	}
	return known
}

// version, when set at link time (-ldflags "-X
// github.com/gantry-project/gantry/internal/oci/spec.version=v1.2.3"), is the
// version Features reports.
var version string

// buildVersion is gantry-oci's version: the link-time version, else the
// main module's version from the build information, else "dev".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
