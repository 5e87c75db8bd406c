package cli

import (
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/oci/container"
)

// directExec parses a plain `exec` invocation without building the cobra
// command tree (which costs every exec ~0.2-0.3 ms): global flags among
// --root, --log, --log-format and --debug, then "exec", then exec's
// flags in their plain forms (--flag VALUE, --flag=VALUE, -f VALUE,
// --bool), the container id and the command. It reports false for
// anything else (help, --version, another global flag, a short flag
// group, -fVALUE, a boolean with a value, "--", a value that does not
// parse, a log format other than text or json, a missing id): cobra
// parses those as before, with its errors and semantics. What it
// accepts, it reads exactly as cobra's flags would.
func directExec(args []string) (*globals, *container.ExecOptions, bool) {
	g := &globals{root: defaultRoot(), logFormat: "text", rootless: "auto"}
	i := 0
	// value returns the value of a flag that takes one: after "=" or the
	// next argument.
	value := func(name, arg string) (string, bool) {
		if v, ok := strings.CutPrefix(arg, name+"="); ok {
			return v, true
		}
		if arg == name && i+1 < len(args) {
			i++
			return args[i], true
		}
		return "", false
	}
	named := func(arg string, names ...string) bool {
		for _, n := range names {
			if arg == n || strings.HasPrefix(arg, n+"=") {
				return true
			}
		}
		return false
	}
	for ; i < len(args) && args[i] != "exec"; i++ {
		a := args[i]
		var ok bool
		switch {
		case named(a, "--root"):
			g.root, ok = value("--root", a)
		case named(a, "--log"):
			g.log, ok = value("--log", a)
		case named(a, "--log-format"):
			g.logFormat, ok = value("--log-format", a)
		case a == "--debug":
			g.debug, ok = true, true
		}
		if !ok {
			return nil, nil, false
		}
	}
	if i == len(args) || (g.logFormat != "text" && g.logFormat != "json") {
		return nil, nil, false
	}
	o := &container.ExecOptions{}
	for i++; i < len(args); i++ {
		a := args[i]
		if a == "" || a[0] != '-' {
			break
		}
		ok := true
		var v string
		switch {
		case a == "-d" || a == "--detach":
			o.Detach = true
		case a == "-t" || a == "--tty":
			o.Tty = true
		case a == "--no-new-privs":
			o.NoNewPrivs = true
		case a == "--ignore-paused":
			o.IgnorePaused = true
		case a == "-p" || named(a, "--process"):
			o.ProcessFile, ok = value(flagName(a, "-p", "--process"), a)
		case named(a, "--console-socket"):
			o.ConsoleSocket, ok = value("--console-socket", a)
		case named(a, "--pid-file"):
			o.PidFile, ok = value("--pid-file", a)
		case named(a, "--cwd"):
			o.Cwd, ok = value("--cwd", a)
		case a == "-e" || named(a, "--env"):
			if v, ok = value(flagName(a, "-e", "--env"), a); ok {
				o.Env = append(o.Env, v)
			}
		case a == "-u" || named(a, "--user"):
			o.User, ok = value(flagName(a, "-u", "--user"), a)
		case named(a, "--cgroup"):
			o.Cgroup, ok = value("--cgroup", a)
		case named(a, "--preserve-fds"):
			if v, ok = value("--preserve-fds", a); ok {
				// pflag's int: base prefixes allowed.
				n, err := strconv.ParseInt(v, 0, 0)
				o.PreserveFDs, ok = int(n), err == nil
			}
		default:
			ok = false
		}
		if !ok {
			return nil, nil, false
		}
	}
	if i == len(args) {
		return nil, nil, false
	}
	o.ID, o.Args = args[i], args[i+1:]
	return g, o, true
}

// flagName returns short if arg is the short flag, else long.
func flagName(arg, short, long string) string {
	if arg == short {
		return short
	}
	return long
}
