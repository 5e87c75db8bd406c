package container

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The binary form of the messages between the parent and the container's
// init (protocol.go). Decoding the JSON of a whole runtime-spec config in
// the init, a fresh process, cost ~1 ms of encoding/json's first-use
// reflection (type caches) on every create; this codec uses none.
//
// A frame is a 4-byte little-endian body length, then the body: one type
// byte, then for "config" the InitConfig and for "error" the text.
// Integers are uvarints (signed ones zigzag varints), strings and lists a
// uvarint length then their elements, an optional value a presence byte
// then the value.
//
// Only the parts of the spec that the init reads are carried (spec and
// the methods it calls): process, root, hostname, domainname, mounts, hooks,
// annotations and, of linux, the id mappings, sysctls, cgroupsPath,
// namespaces, devices, seccomp, rootfsPropagation, masked and read-only
// paths, mountLabel and personality. Not sent: linux.resources (the
// parent applies it), linux.timeOffsets (the C bootstrap writes them),
// and intelRdt, memoryPolicy and netDevices, which create refuses. Code in
// the init that reads another field of the spec must add it here
// (TestInitConfigRoundTrip). The parent and the init are the same binary:
// the format needs no version.

// maxFrame bounds a frame's body: a config is a few KiB, a seccomp
// program a few tens.
const maxFrame = 64 << 20

var msgTypes = []string{msgConfig, msgHooks, msgHooksDone, msgReady, msgError}

func writeFrame(w io.Writer, m message) error {
	t := -1
	for i, v := range msgTypes {
		if v == m.Type {
			t = i
		}
	}
	if t < 0 {
		return fmt.Errorf("message type %q: unknown", m.Type)
	}
	e := &encoder{b: make([]byte, 4, 256)}
	e.b = append(e.b, byte(t))
	switch {
	case m.Type == msgError:
		e.str(m.Error)
	case m.Type == msgConfig && m.Config != nil:
		e.initConfig(m.Config)
	case m.Type == msgConfig:
		return errors.New("config message without a config")
	}
	binary.LittleEndian.PutUint32(e.b, uint32(len(e.b)-4))
	_, err := w.Write(e.b)
	return err
}

func readFrame(r io.Reader) (*message, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n < 1 || n > maxFrame {
		return nil, fmt.Errorf("message of %d bytes: out of range", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("read message body: %w", io.ErrUnexpectedEOF)
	}
	if int(body[0]) >= len(msgTypes) {
		return nil, fmt.Errorf("message type %d: unknown", body[0])
	}
	m := &message{Type: msgTypes[body[0]]}
	d := &decoder{b: body[1:]}
	switch m.Type {
	case msgError:
		m.Error = d.str()
	case msgConfig:
		m.Config = d.initConfig()
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode %q message: %w", m.Type, d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("decode %q message: %d bytes left over", m.Type, len(d.b))
	}
	return m, nil
}

type encoder struct{ b []byte }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) bool(v bool) bool {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
	return v
}

func (e *encoder) bytes(v []byte) {
	e.uint(uint64(len(v)))
	e.b = append(e.b, v...)
}

func (e *encoder) strs(v []string) {
	e.uint(uint64(len(v)))
	for _, s := range v {
		e.str(s)
	}
}

func strList[T ~string](v []T) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = string(s)
	}
	return out
}

func (e *encoder) strMap(m map[string]string) {
	e.bool(m != nil)
	if m == nil {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	e.uint(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

func (e *encoder) idMaps(v []specs.LinuxIDMapping) {
	e.uint(uint64(len(v)))
	for _, m := range v {
		e.uint(uint64(m.ContainerID))
		e.uint(uint64(m.HostID))
		e.uint(uint64(m.Size))
	}
}

func (e *encoder) hooks(v []specs.Hook) {
	e.uint(uint64(len(v)))
	for _, h := range v {
		e.str(h.Path)
		e.strs(h.Args)
		e.strs(h.Env)
		if e.bool(h.Timeout != nil) {
			e.int(int64(*h.Timeout))
		}
	}
}

func (e *encoder) initConfig(c *InitConfig) {
	e.str(c.ID)
	e.str(c.Bundle)
	e.str(c.Rootfs)
	for _, v := range []bool{c.NoPivot, c.NoNewKeyring, c.NewMountNS, c.NewUserNS, c.NewCgroupNS, c.NewUTSNS, c.Exec} {
		e.bool(v)
	}
	for _, v := range []int{c.PreserveFDs, c.FifoFD, c.ConsoleFD, c.ListenerFD, c.Pid} {
		e.int(int64(v))
	}
	e.bytes(c.Seccomp)
	if e.bool(c.Spec != nil) {
		e.spec(c.Spec)
	}
}

func (e *encoder) spec(s *specs.Spec) {
	e.str(s.Version)
	if p := s.Process; e.bool(p != nil) {
		e.process(p)
	}
	if r := s.Root; e.bool(r != nil) {
		e.str(r.Path)
		e.bool(r.Readonly)
	}
	e.str(s.Hostname)
	e.str(s.Domainname)
	e.bool(s.Mounts != nil)
	e.uint(uint64(len(s.Mounts)))
	for _, m := range s.Mounts {
		e.str(m.Destination)
		e.str(m.Type)
		e.str(m.Source)
		e.strs(m.Options)
		e.idMaps(m.UIDMappings)
		e.idMaps(m.GIDMappings)
	}
	if h := s.Hooks; e.bool(h != nil) {
		for _, l := range [][]specs.Hook{h.Prestart, h.CreateRuntime, h.CreateContainer, h.StartContainer, h.Poststart, h.Poststop} {
			e.hooks(l)
		}
	}
	e.strMap(s.Annotations)
	if l := s.Linux; e.bool(l != nil) {
		e.linux(l)
	}
}

func (e *encoder) process(p *specs.Process) {
	e.bool(p.Terminal)
	if b := p.ConsoleSize; e.bool(b != nil) {
		e.uint(uint64(b.Height))
		e.uint(uint64(b.Width))
	}
	e.uint(uint64(p.User.UID))
	e.uint(uint64(p.User.GID))
	if e.bool(p.User.Umask != nil) {
		e.uint(uint64(*p.User.Umask))
	}
	e.uint(uint64(len(p.User.AdditionalGids)))
	for _, g := range p.User.AdditionalGids {
		e.uint(uint64(g))
	}
	e.str(p.User.Username)
	e.strs(p.Args)
	e.str(p.CommandLine)
	e.strs(p.Env)
	e.str(p.Cwd)
	if c := p.Capabilities; e.bool(c != nil) {
		for _, l := range [][]string{c.Bounding, c.Effective, c.Inheritable, c.Permitted, c.Ambient} {
			e.strs(l)
		}
	}
	e.uint(uint64(len(p.Rlimits)))
	for _, r := range p.Rlimits {
		e.str(r.Type)
		e.uint(r.Hard)
		e.uint(r.Soft)
	}
	e.bool(p.NoNewPrivileges)
	e.str(p.ApparmorProfile)
	if e.bool(p.OOMScoreAdj != nil) {
		e.int(int64(*p.OOMScoreAdj))
	}
	if s := p.Scheduler; e.bool(s != nil) {
		e.str(string(s.Policy))
		e.int(int64(s.Nice))
		e.int(int64(s.Priority))
		e.strs(strList(s.Flags))
		e.uint(s.Runtime)
		e.uint(s.Deadline)
		e.uint(s.Period)
	}
	e.str(p.SelinuxLabel)
	if io := p.IOPriority; e.bool(io != nil) {
		e.str(string(io.Class))
		e.int(int64(io.Priority))
	}
	if a := p.ExecCPUAffinity; e.bool(a != nil) {
		e.str(a.Initial)
		e.str(a.Final)
	}
}

func (e *encoder) linux(l *specs.Linux) {
	e.idMaps(l.UIDMappings)
	e.idMaps(l.GIDMappings)
	e.strMap(l.Sysctl)
	e.str(l.CgroupsPath)
	e.uint(uint64(len(l.Namespaces)))
	for _, ns := range l.Namespaces {
		e.str(string(ns.Type))
		e.str(ns.Path)
	}
	e.uint(uint64(len(l.Devices)))
	for _, d := range l.Devices {
		e.str(d.Path)
		e.str(d.Type)
		e.int(d.Major)
		e.int(d.Minor)
		if e.bool(d.FileMode != nil) {
			e.uint(uint64(*d.FileMode))
		}
		if e.bool(d.UID != nil) {
			e.uint(uint64(*d.UID))
		}
		if e.bool(d.GID != nil) {
			e.uint(uint64(*d.GID))
		}
	}
	if sc := l.Seccomp; e.bool(sc != nil) {
		e.str(string(sc.DefaultAction))
		if e.bool(sc.DefaultErrnoRet != nil) {
			e.uint(uint64(*sc.DefaultErrnoRet))
		}
		e.strs(strList(sc.Architectures))
		e.strs(strList(sc.Flags))
		e.str(sc.ListenerPath)
		e.str(sc.ListenerMetadata)
		e.uint(uint64(len(sc.Syscalls)))
		for _, sy := range sc.Syscalls {
			e.strs(sy.Names)
			e.str(string(sy.Action))
			if e.bool(sy.ErrnoRet != nil) {
				e.uint(uint64(*sy.ErrnoRet))
			}
			e.uint(uint64(len(sy.Args)))
			for _, a := range sy.Args {
				e.uint(uint64(a.Index))
				e.uint(a.Value)
				e.uint(a.ValueTwo)
				e.str(string(a.Op))
			}
		}
	}
	e.str(l.RootfsPropagation)
	e.strs(l.MaskedPaths)
	e.strs(l.ReadonlyPaths)
	e.str(l.MountLabel)
	if p := l.Personality; e.bool(p != nil) {
		e.str(string(p.Domain))
		e.strs(strList(p.Flags))
	}
}

// decoder reads what encoder wrote; the first error sticks and every
// later read returns zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: truncated or malformed", what)
	}
	d.b = nil
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u32() uint32 {
	v := d.uint()
	if v > 1<<32-1 {
		d.fail("32-bit integer")
		return 0
	}
	return uint32(v)
}

// count reads a list length; each element takes at least one byte.
func (d *decoder) count() int {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail("list length")
		return 0
	}
	return int(n)
}

func (d *decoder) bool() bool {
	if len(d.b) < 1 || d.b[0] > 1 {
		d.fail("boolean")
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *decoder) raw() []byte {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail("string")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.raw()) }

func (d *decoder) bytes() []byte {
	v := d.raw()
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

// strs returns nil for an empty list, as JSON's omitempty did.
func (d *decoder) strs() []string {
	n := d.count()
	if n == 0 {
		return nil
	}
	v := make([]string, n)
	for i := range v {
		v[i] = d.str()
	}
	return v
}

func typedList[T ~string](v []string) []T {
	if v == nil {
		return nil
	}
	out := make([]T, len(v))
	for i, s := range v {
		out[i] = T(s)
	}
	return out
}

func (d *decoder) strMap() map[string]string {
	if !d.bool() {
		return nil
	}
	n := d.count()
	m := make(map[string]string, n)
	for range n {
		k := d.str()
		m[k] = d.str()
	}
	return m
}

func (d *decoder) idMaps() []specs.LinuxIDMapping {
	n := d.count()
	if n == 0 {
		return nil
	}
	v := make([]specs.LinuxIDMapping, n)
	for i := range v {
		v[i] = specs.LinuxIDMapping{ContainerID: d.u32(), HostID: d.u32(), Size: d.u32()}
	}
	return v
}

func (d *decoder) hooks() []specs.Hook {
	n := d.count()
	if n == 0 {
		return nil
	}
	v := make([]specs.Hook, n)
	for i := range v {
		h := &v[i]
		h.Path = d.str()
		h.Args = d.strs()
		h.Env = d.strs()
		if d.bool() {
			t := int(d.int())
			h.Timeout = &t
		}
	}
	return v
}

func (d *decoder) initConfig() *InitConfig {
	c := &InitConfig{ID: d.str(), Bundle: d.str(), Rootfs: d.str()}
	for _, p := range []*bool{&c.NoPivot, &c.NoNewKeyring, &c.NewMountNS, &c.NewUserNS, &c.NewCgroupNS, &c.NewUTSNS, &c.Exec} {
		*p = d.bool()
	}
	for _, p := range []*int{&c.PreserveFDs, &c.FifoFD, &c.ConsoleFD, &c.ListenerFD, &c.Pid} {
		*p = int(d.int())
	}
	c.Seccomp = d.bytes()
	if d.bool() {
		c.Spec = d.spec()
	}
	return c
}

func (d *decoder) spec() *specs.Spec {
	s := &specs.Spec{Version: d.str()}
	if d.bool() {
		s.Process = d.process()
	}
	if d.bool() {
		s.Root = &specs.Root{Path: d.str(), Readonly: d.bool()}
	}
	s.Hostname = d.str()
	s.Domainname = d.str()
	hasMounts := d.bool()
	if n := d.count(); n > 0 || hasMounts {
		s.Mounts = make([]specs.Mount, n)
		for i := range s.Mounts {
			m := &s.Mounts[i]
			m.Destination = d.str()
			m.Type = d.str()
			m.Source = d.str()
			m.Options = d.strs()
			m.UIDMappings = d.idMaps()
			m.GIDMappings = d.idMaps()
		}
	}
	if d.bool() {
		s.Hooks = &specs.Hooks{
			Prestart:        d.hooks(),
			CreateRuntime:   d.hooks(),
			CreateContainer: d.hooks(),
			StartContainer:  d.hooks(),
			Poststart:       d.hooks(),
			Poststop:        d.hooks(),
		}
	}
	s.Annotations = d.strMap()
	if d.bool() {
		s.Linux = d.linux()
	}
	return s
}

func (d *decoder) process() *specs.Process {
	p := &specs.Process{Terminal: d.bool()}
	if d.bool() {
		p.ConsoleSize = &specs.Box{Height: uint(d.uint()), Width: uint(d.uint())}
	}
	p.User.UID = d.u32()
	p.User.GID = d.u32()
	if d.bool() {
		u := d.u32()
		p.User.Umask = &u
	}
	if n := d.count(); n > 0 {
		p.User.AdditionalGids = make([]uint32, n)
		for i := range p.User.AdditionalGids {
			p.User.AdditionalGids[i] = d.u32()
		}
	}
	p.User.Username = d.str()
	p.Args = d.strs()
	p.CommandLine = d.str()
	p.Env = d.strs()
	p.Cwd = d.str()
	if d.bool() {
		p.Capabilities = &specs.LinuxCapabilities{
			Bounding:    d.strs(),
			Effective:   d.strs(),
			Inheritable: d.strs(),
			Permitted:   d.strs(),
			Ambient:     d.strs(),
		}
	}
	if n := d.count(); n > 0 {
		p.Rlimits = make([]specs.POSIXRlimit, n)
		for i := range p.Rlimits {
			p.Rlimits[i] = specs.POSIXRlimit{Type: d.str(), Hard: d.uint(), Soft: d.uint()}
		}
	}
	p.NoNewPrivileges = d.bool()
	p.ApparmorProfile = d.str()
	if d.bool() {
		v := int(d.int())
		p.OOMScoreAdj = &v
	}
	if d.bool() {
		p.Scheduler = &specs.Scheduler{
			Policy:   specs.LinuxSchedulerPolicy(d.str()),
			Nice:     int32(d.int()),
			Priority: int32(d.int()),
			Flags:    typedList[specs.LinuxSchedulerFlag](d.strs()),
			Runtime:  d.uint(),
			Deadline: d.uint(),
			Period:   d.uint(),
		}
	}
	p.SelinuxLabel = d.str()
	if d.bool() {
		p.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPriorityClass(d.str()), Priority: int(d.int())}
	}
	if d.bool() {
		p.ExecCPUAffinity = &specs.CPUAffinity{Initial: d.str(), Final: d.str()}
	}
	return p
}

func (d *decoder) linux() *specs.Linux {
	l := &specs.Linux{
		UIDMappings: d.idMaps(),
		GIDMappings: d.idMaps(),
		Sysctl:      d.strMap(),
		CgroupsPath: d.str(),
	}
	if n := d.count(); n > 0 {
		l.Namespaces = make([]specs.LinuxNamespace, n)
		for i := range l.Namespaces {
			l.Namespaces[i] = specs.LinuxNamespace{Type: specs.LinuxNamespaceType(d.str()), Path: d.str()}
		}
	}
	if n := d.count(); n > 0 {
		l.Devices = make([]specs.LinuxDevice, n)
		for i := range l.Devices {
			dev := &l.Devices[i]
			dev.Path = d.str()
			dev.Type = d.str()
			dev.Major = d.int()
			dev.Minor = d.int()
			if d.bool() {
				m := os.FileMode(d.u32())
				dev.FileMode = &m
			}
			if d.bool() {
				u := d.u32()
				dev.UID = &u
			}
			if d.bool() {
				g := d.u32()
				dev.GID = &g
			}
		}
	}
	if d.bool() {
		sc := &specs.LinuxSeccomp{DefaultAction: specs.LinuxSeccompAction(d.str())}
		if d.bool() {
			v := uint(d.uint())
			sc.DefaultErrnoRet = &v
		}
		sc.Architectures = typedList[specs.Arch](d.strs())
		sc.Flags = typedList[specs.LinuxSeccompFlag](d.strs())
		sc.ListenerPath = d.str()
		sc.ListenerMetadata = d.str()
		if n := d.count(); n > 0 {
			sc.Syscalls = make([]specs.LinuxSyscall, n)
			for i := range sc.Syscalls {
				sy := &sc.Syscalls[i]
				sy.Names = d.strs()
				sy.Action = specs.LinuxSeccompAction(d.str())
				if d.bool() {
					v := uint(d.uint())
					sy.ErrnoRet = &v
				}
				if n := d.count(); n > 0 {
					sy.Args = make([]specs.LinuxSeccompArg, n)
					for j := range sy.Args {
						sy.Args[j] = specs.LinuxSeccompArg{
							Index:    uint(d.uint()),
							Value:    d.uint(),
							ValueTwo: d.uint(),
							Op:       specs.LinuxSeccompOperator(d.str()),
						}
					}
				}
			}
		}
		l.Seccomp = sc
	}
	l.RootfsPropagation = d.str()
	l.MaskedPaths = d.strs()
	l.ReadonlyPaths = d.strs()
	l.MountLabel = d.str()
	if d.bool() {
		l.Personality = &specs.LinuxPersonality{
			Domain: specs.LinuxPersonalityDomain(d.str()),
			Flags:  typedList[specs.LinuxPersonalityFlag](d.strs()),
		}
	}
	return l
}
