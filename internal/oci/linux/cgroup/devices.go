package cgroup

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Access bits, as the kernel's BPF_DEVCG_ACC_* values.
const (
	accMknod uint32 = 1
	accRead  uint32 = 2
	accWrite uint32 = 4
	accAll          = accMknod | accRead | accWrite
)

// Device types, as the kernel's BPF_DEVCG_DEV_* values; devAll is ours.
const (
	devAll   uint32 = 0
	devBlock uint32 = 1
	devChar  uint32 = 2
)

// deviceRule is a checked linux.resources.devices entry. Major and minor
// are -1 for "any".
type deviceRule struct {
	allow  bool
	typ    uint32
	major  int64
	minor  int64
	access uint32
}

func parseDeviceRule(d specs.LinuxDeviceCgroup) (deviceRule, error) {
	r := deviceRule{allow: d.Allow, major: -1, minor: -1}
	switch d.Type {
	case "", "a":
		r.typ = devAll
	case "b":
		r.typ = devBlock
	case "c":
		r.typ = devChar
	default:
		return r, fmt.Errorf("type %q is not a, b or c: %w", d.Type, errdefs.ErrInvalidArgument)
	}
	if d.Major != nil {
		if *d.Major < -1 || *d.Major > 0xfff {
			return r, fmt.Errorf("major %d is out of range: %w", *d.Major, errdefs.ErrInvalidArgument)
		}
		r.major = *d.Major
	}
	if d.Minor != nil {
		if *d.Minor < -1 || *d.Minor > 0xfffff {
			return r, fmt.Errorf("minor %d is out of range: %w", *d.Minor, errdefs.ErrInvalidArgument)
		}
		r.minor = *d.Minor
	}
	if d.Access == "" {
		r.access = accAll
	}
	for _, c := range d.Access {
		var bit uint32
		switch c {
		case 'r':
			bit = accRead
		case 'w':
			bit = accWrite
		case 'm':
			bit = accMknod
		default:
			return r, fmt.Errorf("access %q: %q is not one of r, w, m: %w", d.Access, c, errdefs.ErrInvalidArgument)
		}
		if r.access&bit != 0 {
			return r, fmt.Errorf("access %q repeats %q: %w", d.Access, c, errdefs.ErrInvalidArgument)
		}
		r.access |= bit
	}
	return r, nil
}

// v1String renders the rule for devices.allow / devices.deny. Type "a"
// always becomes the bare "a", which the v1 kernel reads as "all devices,
// all access" and which resets the exception list.
func (r deviceRule) v1String() string {
	if r.typ == devAll {
		return "a"
	}
	var b strings.Builder
	if r.typ == devBlock {
		b.WriteString("b ")
	} else {
		b.WriteString("c ")
	}
	num := func(v int64) string {
		if v < 0 {
			return "*"
		}
		return itoa(v)
	}
	b.WriteString(num(r.major) + ":" + num(r.minor) + " ")
	if r.access&accRead != 0 {
		b.WriteByte('r')
	}
	if r.access&accWrite != 0 {
		b.WriteByte('w')
	}
	if r.access&accMknod != 0 {
		b.WriteByte('m')
	}
	return b.String()
}

// v1DeviceWrites plans the v1 devices controller: deny everything, then
// every rule in order, each to devices.allow or devices.deny.
func v1DeviceWrites(rules []specs.LinuxDeviceCgroup) ([]write, error) {
	w := []write{{file: "devices.deny", value: "a", field: "linux.resources.devices"}}
	for i, d := range rules {
		r, err := parseDeviceRule(d)
		if err != nil {
			return nil, fmt.Errorf("linux.resources.devices[%d]: %w", i, err)
		}
		file := "devices.deny"
		if r.allow {
			file = "devices.allow"
		}
		w = append(w, write{file: file, value: r.v1String(), field: fmt.Sprintf("linux.resources.devices[%d]", i)})
	}
	return w, nil
}
