package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// fieldError is a validation failure of one config field. Its message is
// "<field>: <reason>"; it unwraps to both its kind (an errdefs sentinel) and
// the underlying error, so errors.Is works for either.
type fieldError struct {
	field string
	kind  error
	err   error
}

func (e *fieldError) Error() string {
	msg := e.err.Error()
	if e.field != "" {
		msg = e.field + ": " + msg
	}
	// The user reads one line.
	return strings.ReplaceAll(msg, "\n", "; ")
}

func (e *fieldError) Unwrap() []error { return []error{e.kind, e.err} }

// invalidf reports an invalid field with a reason built from format.
func invalidf(field, format string, args ...any) error {
	return &fieldError{field: field, kind: errdefs.ErrInvalidArgument, err: fmt.Errorf(format, args...)}
}

// invalid reports an invalid field with the error a validator returned.
// Validators of the linux packages often name the field already
// ("process.scheduler.policy: ..."); the field is then not repeated.
func invalid(field string, err error) error {
	if msg := err.Error(); strings.HasPrefix(msg, field) && len(msg) > len(field) && strings.ContainsRune(".[:", rune(msg[len(field)])) {
		field = ""
	}
	return &fieldError{field: field, kind: errdefs.ErrInvalidArgument, err: err}
}

// Load reads bundle/config.json and validates it. Unknown JSON properties
// are ignored, as the spec requires. Errors are one line naming the field and
// the reason, prefixed "config.json: ", and wrap errdefs.ErrInvalidArgument,
// or errdefs.ErrNotFound when config.json or the root filesystem is missing.
func Load(bundle string) (*specs.Spec, error) {
	abs, err := filepath.Abs(bundle)
	if err != nil {
		return nil, fmt.Errorf("config.json: bundle %q: %w", bundle, err)
	}
	path := filepath.Join(abs, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("config.json: %q does not exist: %w", path, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("config.json: %w", err)
	}
	s, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	if err := Validate(s, abs); err != nil {
		return nil, fmt.Errorf("config.json: %w", err)
	}
	return s, nil
}

// decode parses config.json text, turning JSON errors into one line with a
// line and column. It tries decodeFast first: a fresh process's first
// json.Unmarshal into specs.Spec costs ~1 ms of reflection set-up, every
// create. Whenever decodeFast is not certain to give what encoding/json
// gives (including on every error), encoding/json decodes the text as
// before, so the result and the error messages do not depend on it.
func decode(data []byte) (*specs.Spec, error) {
	if s, ok := decodeFast(data); ok {
		return s, nil
	}
	var s specs.Spec
	err := json.Unmarshal(data, &s)
	if err == nil {
		return &s, nil
	}
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		line, col := position(data, syn.Offset)
		return nil, invalidf("", "invalid JSON at line %d, column %d: %s", line, col, syn.Error())
	case errors.As(err, &typ):
		line, col := position(data, typ.Offset)
		if typ.Field == "" {
			return nil, invalidf("", "the config must be a JSON object, not %s (line %d, column %d)", typ.Value, line, col)
		}
		return nil, invalidf(typ.Field, "cannot use JSON %s as %s at line %d, column %d", typ.Value, typ.Type, line, col)
	default:
		return nil, invalidf("", "invalid JSON: %s", err.Error())
	}
}

// position turns the offset of an encoding/json error (the number of bytes
// read when it failed) into the 1-based line and column of the last byte
// read, the one at fault.
func position(data []byte, offset int64) (line, col int) {
	if offset > 0 {
		offset--
	}
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	line, col = 1, 1
	for _, b := range data[:offset] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// Validate checks s, read from the config.json of bundle (the absolute
// bundle dir; a relative root.path and relative bind-mount sources resolve
// against it), against runtime-spec v1.3.0 for a Linux container about to be
// created. It returns the first problem found as one line "<field>: <reason>"
// wrapping errdefs.ErrInvalidArgument (errdefs.ErrNotFound for a missing root
// filesystem, errdefs.ErrFailedPrecondition for a host that lacks what the
// config asks for, such as resctrl or a namespace type).
func Validate(s *specs.Spec, bundle string) error {
	if s == nil {
		return invalidf("", "empty config")
	}
	v := &validator{s: s, bundle: bundle, ns: map[specs.LinuxNamespaceType]*nsEntry{}}
	for _, check := range []func() error{
		v.version,
		v.root,
		v.namespaces, // before the fields that depend on them
		v.process,
		v.hostnames,
		v.mounts,
		v.hooks,
		v.annotations,
		v.idMappings,
		v.timeOffsets,
		v.devices,
		v.netDevices,
		v.cgroups,
		v.sysctl,
		v.seccomp,
		v.linuxPaths,
		v.personality,
		v.intelRdt,
		v.memoryPolicy,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// validator carries what the checks share: the spec, the bundle and the
// namespaces it asks for.
type validator struct {
	s      *specs.Spec
	bundle string
	ns     map[specs.LinuxNamespaceType]*nsEntry
}

// nsEntry is one linux.namespaces entry.
type nsEntry struct {
	index int
	path  string
	host  bool // path is the runtime's own namespace of that type
}

// private reports whether the container gets a namespace of type t apart
// from the runtime's: a new one, or a joined one that is not the runtime's.
func (v *validator) private(t specs.LinuxNamespaceType) bool {
	e, ok := v.ns[t]
	return ok && !e.host
}

// linux returns s.Linux, or an empty one.
func (v *validator) linux() *specs.Linux {
	if v.s.Linux == nil {
		return &specs.Linux{}
	}
	return v.s.Linux
}

// resolve makes p absolute against the bundle.
func (v *validator) resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(v.bundle, p)
}

func (v *validator) version() error {
	if v.s.Version == "" {
		return invalidf("ociVersion", "required")
	}
	ver, err := parseSemver(v.s.Version)
	if err != nil {
		return invalid("ociVersion", err)
	}
	if ver.major != 1 {
		return invalidf("ociVersion", "unsupported major version %d (want 1.x)", ver.major)
	}
	return nil
}

func (v *validator) root() error {
	r := v.s.Root
	if r == nil {
		return invalidf("root", "required on Linux")
	}
	if r.Path == "" {
		return invalidf("root.path", "required")
	}
	p := v.resolve(r.Path)
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &fieldError{field: "root.path", kind: errdefs.ErrNotFound, err: fmt.Errorf("%q does not exist", p)}
		}
		return invalid("root.path", err)
	}
	if !fi.IsDir() {
		return invalidf("root.path", "%q is not a directory", p)
	}
	return nil
}

func (v *validator) annotations() error {
	for k := range v.s.Annotations {
		if k == "" {
			return invalidf("annotations", "empty key")
		}
	}
	return nil
}
