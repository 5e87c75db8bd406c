package spec

import (
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/oci/linux/capability"
	"github.com/gantry-project/gantry/internal/oci/linux/rlimit"
	"github.com/gantry-project/gantry/internal/oci/linux/sched"
)

// process checks the process object. It is optional in config.json
// (config.md: REQUIRED only when start is called): a container created
// without one cannot be started, which "start" reports.
func (v *validator) process() error {
	if v.s.Process == nil {
		return nil
	}
	return ValidateProcess(v.s.Process)
}

// ValidateProcess checks a process object on its own, as config.json's
// process or as the process.json of `gantry-oci exec --process`. Errors name
// the field as "process.<field>" and wrap errdefs.ErrInvalidArgument.
func ValidateProcess(p *specs.Process) error {
	if p == nil {
		return invalidf("process", "required")
	}
	if len(p.Args) == 0 {
		return invalidf("process.args", "at least one entry is required")
	}
	if p.Args[0] == "" {
		return invalidf("process.args[0]", "empty")
	}
	if p.Cwd == "" {
		return invalidf("process.cwd", "required")
	}
	if !filepath.IsAbs(p.Cwd) {
		return invalidf("process.cwd", "%q is not an absolute path", p.Cwd)
	}
	for i, e := range p.Env {
		k, _, ok := strings.Cut(e, "=")
		switch {
		case !ok:
			return invalidf(fmt.Sprintf("process.env[%d]", i), "%q is not KEY=VALUE", e)
		case k == "":
			return invalidf(fmt.Sprintf("process.env[%d]", i), "%q has an empty name", e)
		case strings.ContainsRune(e, 0):
			return invalidf(fmt.Sprintf("process.env[%d]", i), "%q contains a NUL byte", e)
		}
	}
	// Runtimes MUST ignore consoleSize when terminal is false, so it is
	// not checked: any size is acceptable either way.
	if u := p.User.Umask; u != nil && *u > 0o777 {
		return invalidf("process.user.umask", "%#o is not a permission mask (max 0777)", *u)
	}
	if err := checkRlimits(p.Rlimits); err != nil {
		return err
	}
	if err := checkCapabilities(p.Capabilities); err != nil {
		return err
	}
	if a := p.OOMScoreAdj; a != nil && (*a < -1000 || *a > 1000) {
		return invalidf("process.oomScoreAdj", "%d is out of range -1000..1000", *a)
	}
	if p.Scheduler != nil {
		if err := sched.ValidateScheduler(p.Scheduler); err != nil {
			return invalid("process.scheduler", err)
		}
	}
	if p.IOPriority != nil {
		if err := sched.ValidateIOPriority(p.IOPriority); err != nil {
			return invalid("process.ioPriority", err)
		}
	}
	if a := p.ExecCPUAffinity; a != nil {
		if a.Initial != "" {
			if _, err := sched.ParseCPUList(a.Initial); err != nil {
				return invalid("process.execCPUAffinity.initial", err)
			}
		}
		if a.Final != "" {
			if _, err := sched.ParseCPUList(a.Final); err != nil {
				return invalid("process.execCPUAffinity.final", err)
			}
		}
	}
	// apparmorProfile and selinuxLabel are checked when they are applied:
	// whether the host can honour them is only known then.
	return nil
}

func checkRlimits(rls []specs.POSIXRlimit) error {
	seen := make(map[string]int, len(rls))
	for i, rl := range rls {
		field := fmt.Sprintf("process.rlimits[%d]", i)
		if rl.Type == "" {
			return invalidf(field+".type", "required")
		}
		if _, err := rlimit.Parse(rl.Type); err != nil {
			return invalid(field+".type", err)
		}
		if j, dup := seen[rl.Type]; dup {
			return invalidf(field+".type", "%s is already set by process.rlimits[%d]", rl.Type, j)
		}
		seen[rl.Type] = i
		if rl.Soft > rl.Hard {
			return invalidf(field, "soft limit %d is above hard limit %d", rl.Soft, rl.Hard)
		}
	}
	return nil
}

func checkCapabilities(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	sets := []struct {
		name  string
		names []string
	}{
		{"bounding", c.Bounding},
		{"effective", c.Effective},
		{"inheritable", c.Inheritable},
		{"permitted", c.Permitted},
		{"ambient", c.Ambient},
	}
	for _, set := range sets {
		for i, name := range set.names {
			if _, err := capability.Parse(name); err != nil {
				return invalid(fmt.Sprintf("process.capabilities.%s[%d]", set.name, i), err)
			}
		}
	}
	return nil
}

// hostnames checks hostname and domainname, which need a UTS namespace of
// the container's own: setting them in the runtime's would change the host.
func (v *validator) hostnames() error {
	for _, f := range []struct{ field, value string }{
		{"hostname", v.s.Hostname},
		{"domainname", v.s.Domainname},
	} {
		if f.value == "" {
			continue
		}
		if !v.private(specs.UTSNamespace) {
			return invalidf(f.field, "setting it needs the container's own uts namespace in linux.namespaces")
		}
		if len(f.value) > 64 {
			return invalidf(f.field, "%q is longer than 64 bytes", f.value)
		}
		if strings.ContainsRune(f.value, 0) {
			return invalidf(f.field, "%q contains a NUL byte", f.value)
		}
	}
	return nil
}
