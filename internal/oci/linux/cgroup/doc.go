// Package cgroup creates and manages one container's control group on
// cgroup v1 (legacy), v2 (unified) and hybrid hosts: it resolves
// linux.cgroupsPath against every mounted hierarchy, moves the container's
// init into it, applies the runtime-spec linux.resources (converting v1
// values to v2 files where only v2 has the controller: cpu.shares becomes
// cpu.weight = 1 + (shares-2)*9999/262142, blkio weight becomes io.weight =
// 1 + (weight-10)*9999/990 or io.bfq.weight unchanged, memory.swap becomes
// memory.swap.max = swap - limit, quota/period become cpu.max, throttle
// devices become io.max lines, hugetlb.<size>.limit_in_bytes becomes
// hugetlb.<size>.max, device rules become an eBPF cgroup-device program),
// and later freezes, lists, measures and removes it. Each resource group is
// written to its v1 hierarchy when one is mounted and to the v2 directory
// otherwise, so on a hybrid host hugetlb limits land on the unified mount.
// There is no systemd driver. See docs/design/cgroups.md.
package cgroup
