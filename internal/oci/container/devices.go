package container

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultDeviceRules are allowed in every container's device cgroup after
// the config's own rules, as runc does: the default devices of
// config-linux.md, the pty devices, and /dev/console.
var defaultDeviceRules = func() []specs.LinuxDeviceCgroup {
	i := func(v int64) *int64 { return &v }
	rule := func(major, minor int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i(major), Minor: i(minor), Access: "rwm"}
	}
	return []specs.LinuxDeviceCgroup{
		rule(1, 3),    // null
		rule(1, 5),    // zero
		rule(1, 7),    // full
		rule(1, 8),    // random
		rule(1, 9),    // urandom
		rule(5, 0),    // tty
		rule(5, 1),    // console
		rule(5, 2),    // ptmx
		rule(136, -1), // pts/*
		{Allow: false, Type: "c", Major: i(10), Minor: i(200), Access: "rwm"}, // tun/tap stays denied
	}
}()

// deviceResources returns r with the device rules the container needs
// appended: the defaults and one per linux.devices entry, so that a config
// that denies everything and then lists its devices works, as with runc.
// A nil r with no devices stays nil.
func deviceResources(r *specs.LinuxResources, devs []specs.LinuxDevice) *specs.LinuxResources {
	if r == nil && len(devs) == 0 {
		return nil
	}
	out := specs.LinuxResources{}
	if r != nil {
		out = *r
	}
	rules := append([]specs.LinuxDeviceCgroup{}, out.Devices...)
	rules = append(rules, defaultDeviceRules[:len(defaultDeviceRules)-1]...)
	for _, d := range devs {
		if d.Type != "c" && d.Type != "b" && d.Type != "u" {
			continue
		}
		typ := d.Type
		if typ == "u" {
			typ = "c"
		}
		major, minor := d.Major, d.Minor
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: "rwm"})
	}
	out.Devices = rules
	return &out
}
