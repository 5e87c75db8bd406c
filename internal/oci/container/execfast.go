package container

import (
	"encoding/binary"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/oci/linux/capability"
	"github.com/gantry-project/gantry/internal/oci/linux/rlimit"
	"github.com/gantry-project/gantry/internal/oci/nsexec"
)

// EnvExecPath set to "go" makes exec take the Go init path even when the
// fast path could run the process (for tests and comparisons).
const EnvExecPath = "GANTRY_OCI_EXEC"

// execTarget is what the exec fast path needs to know of the container's
// linux section.
type execTarget struct {
	namespaces   []specs.LinuxNamespace
	personality  bool // linux.personality is set
	seccomp      bool // linux.seccomp is set
	listenerPath string
}

// fastExec returns the plan of the exec fast path for proc in the container
// t with the compiled seccomp filter (nil without linux.seccomp), or nil
// and the reason the Go init must run the process instead. The C bootstrap then applies the plan in
// finishProcess's order (nsexec/execproc.c) and executes the process
// without a second Go runtime. Everything that can fail without the
// container is checked here, so that a config error still comes from the
// Go path with its usual message. When the plan is returned, the warning
// about capabilities the runtime does not hold has been printed.
func (r *Runtime) fastExec(t execTarget, proc *specs.Process, preserveFDs int, filter []byte) (*nsexec.Exec, string) {
	switch {
	case os.Getenv(EnvExecPath) == "go":
		return nil, EnvExecPath + "=go"
	case r.Rootless:
		return nil, "rootless"
	case proc.Terminal:
		return nil, "terminal"
	case proc.ApparmorProfile != "" || proc.SelinuxLabel != "":
		return nil, "LSM label"
	case proc.Scheduler != nil:
		return nil, "process.scheduler"
	case proc.IOPriority != nil:
		return nil, "process.ioPriority"
	case proc.ExecCPUAffinity != nil && (proc.ExecCPUAffinity.Initial != "" || proc.ExecCPUAffinity.Final != ""):
		return nil, "process.execCPUAffinity"
	case t.personality:
		return nil, "linux.personality"
	case joinsUserNS(t.namespaces):
		return nil, "user namespace"
	case len(proc.Args) == 0:
		return nil, "no args"
	}
	if t.seccomp {
		if t.listenerPath != "" {
			return nil, "seccomp listener"
		}
		if len(filter) < 16 {
			return nil, "no compiled seccomp filter"
		}
		if binary.LittleEndian.Uint64(filter)&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
			return nil, "seccomp notify"
		}
	}
	if a := proc.OOMScoreAdj; a != nil && (*a < -1000 || *a > 1000) {
		return nil, "process.oomScoreAdj out of range"
	}
	if u := proc.User.Umask; u != nil && *u > 0o777 {
		return nil, "process.user.umask out of range"
	}
	res, err := rlimit.Resolve(proc.Rlimits)
	if err != nil {
		return nil, "process.rlimits"
	}
	caps, dropped := boundCaps(proc.Capabilities)
	sets, err := capability.Build(caps)
	if err != nil {
		return nil, "process.capabilities"
	}
	for _, list := range [][]string{proc.Args, proc.Env, {proc.Cwd}} {
		for _, s := range list {
			if strings.IndexByte(s, 0) >= 0 {
				return nil, "NUL byte in args, env or cwd"
			}
		}
	}

	e := &nsexec.Exec{
		PreserveFDs:    preserveFDs,
		OOMScoreAdj:    proc.OOMScoreAdj,
		AddHome:        true,
		UID:            proc.User.UID,
		GID:            proc.User.GID,
		AdditionalGids: proc.User.AdditionalGids,
		Umask:          proc.User.Umask,
		CapLast:        sets.Last,
		Bounding:       sets.Bounding,
		Effective:      sets.Effective,
		Permitted:      sets.Permitted,
		Inheritable:    sets.Inheritable,
		Ambient:        sets.Ambient,
		NoNewPrivs:     proc.NoNewPrivileges,
		Seccomp:        filter,
		Cwd:            proc.Cwd,
		Args:           proc.Args,
		Env:            proc.Env,
	}
	if e.Cwd == "" {
		e.Cwd = "/"
	}
	for _, kv := range proc.Env {
		if strings.HasPrefix(kv, "HOME=") {
			e.AddHome = false
		}
	}
	for i, rl := range proc.Rlimits {
		e.Rlimits = append(e.Rlimits, nsexec.Rlimit{Type: rl.Type, Resource: res[i], Soft: rl.Soft, Hard: rl.Hard})
	}
	warnDropped(dropped)
	return e, ""
}

func joinsUserNS(namespaces []specs.LinuxNamespace) bool {
	for _, ns := range namespaces {
		if ns.Type == specs.UserNamespace {
			return true
		}
	}
	return false
}
