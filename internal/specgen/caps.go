package specgen

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// DefaultCapabilities is docker's default capability set.
var DefaultCapabilities = []string{
	"CAP_AUDIT_WRITE",
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_MKNOD",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_RAW",
	"CAP_SETFCAP",
	"CAP_SETGID",
	"CAP_SETPCAP",
	"CAP_SETUID",
	"CAP_SYS_CHROOT",
}

// AllCapabilities lists every capability Linux defines (up to
// CAP_CHECKPOINT_RESTORE, 40), in number order.
var AllCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// normalizeCap turns "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN" into
// "CAP_NET_ADMIN", and "all" into "ALL".
func normalizeCap(c string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(c))
	if u == "ALL" {
		return u, nil
	}
	if !strings.HasPrefix(u, "CAP_") {
		u = "CAP_" + u
	}
	if !slices.Contains(AllCapabilities, u) {
		return "", fmt.Errorf("capability %q: unknown: %w", c, errdefs.ErrInvalidArgument)
	}
	return u, nil
}

// Capabilities applies docker's --cap-add/--cap-drop rules: "ALL" in add
// gives every capability but those dropped; "ALL" in drop gives only those
// added; otherwise the default set minus drop plus add (add wins). Names may
// be given with or without "CAP_", in any case. The result is in number
// order.
func Capabilities(add, drop []string) ([]string, error) {
	norm := func(list []string, field string) ([]string, bool, error) {
		var out []string
		all := false
		for _, c := range list {
			n, err := normalizeCap(c)
			if err != nil {
				return nil, false, fmt.Errorf("%s: %w", field, err)
			}
			if n == "ALL" {
				all = true
				continue
			}
			out = append(out, n)
		}
		return out, all, nil
	}
	addList, addAll, err := norm(add, "capAdd")
	if err != nil {
		return nil, err
	}
	dropList, dropAll, err := norm(drop, "capDrop")
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	switch {
	case addAll:
		for _, c := range AllCapabilities {
			set[c] = true
		}
		for _, c := range dropList {
			delete(set, c)
		}
	case dropAll:
		for _, c := range addList {
			set[c] = true
		}
	default:
		for _, c := range DefaultCapabilities {
			set[c] = true
		}
		for _, c := range dropList {
			delete(set, c)
		}
		for _, c := range addList {
			set[c] = true
		}
	}
	out := []string{}
	for _, c := range AllCapabilities {
		if set[c] {
			out = append(out, c)
		}
	}
	return out, nil
}
