package rootfs

import (
	"errors"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []string
		want MountOptions
	}{
		{name: "empty", opts: nil, want: MountOptions{}},
		{name: "defaults and empty skipped", opts: []string{"defaults", ""}, want: MountOptions{}},
		{
			name: "flags",
			opts: []string{"ro", "nosuid", "nodev", "noexec", "sync", "dirsync", "mand", "noatime", "nodiratime"},
			want: MountOptions{Flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
				unix.MS_SYNCHRONOUS | unix.MS_DIRSYNC | unix.MS_MANDLOCK | unix.MS_NOATIME | unix.MS_NODIRATIME},
		},
		{name: "later rw wins over ro", opts: []string{"ro", "rw"}, want: MountOptions{ClearFlags: unix.MS_RDONLY}},
		{name: "later ro wins over rw", opts: []string{"rw", "ro"}, want: MountOptions{Flags: unix.MS_RDONLY}},
		{
			name: "clearing options",
			opts: []string{"suid", "dev", "exec", "atime", "diratime", "async"},
			want: MountOptions{ClearFlags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_SYNCHRONOUS},
		},
		{name: "bind", opts: []string{"bind"}, want: MountOptions{Flags: unix.MS_BIND}},
		{name: "rbind", opts: []string{"rbind"}, want: MountOptions{Flags: unix.MS_BIND | unix.MS_REC, Recursive: true}},
		{name: "remount relatime strictatime", opts: []string{"remount", "relatime", "strictatime"}, want: MountOptions{Flags: unix.MS_REMOUNT | unix.MS_RELATIME | unix.MS_STRICTATIME}},
		{
			name: "propagation in order",
			opts: []string{"rbind", "rslave", "shared", "rprivate", "unbindable", "runbindable", "slave", "private", "rshared"},
			want: MountOptions{Flags: unix.MS_BIND | unix.MS_REC, Recursive: true, Propagation: []uintptr{
				unix.MS_SLAVE | unix.MS_REC, unix.MS_SHARED, unix.MS_PRIVATE | unix.MS_REC, unix.MS_UNBINDABLE,
				unix.MS_UNBINDABLE | unix.MS_REC, unix.MS_SLAVE, unix.MS_PRIVATE, unix.MS_SHARED | unix.MS_REC,
			}},
		},
		{
			name: "recursive attrs",
			opts: []string{"rro", "rnosuid", "rnodev", "rnoexec", "rnodiratime", "rnosymfollow"},
			want: MountOptions{AttrSet: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV |
				unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW},
		},
		{
			name: "recursive clears",
			opts: []string{"rrw", "rsuid", "rdev", "rexec", "rdiratime", "rsymfollow"},
			want: MountOptions{AttrClr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV |
				unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW},
		},
		{name: "rro then rrw", opts: []string{"rro", "rrw"}, want: MountOptions{AttrClr: unix.MOUNT_ATTR_RDONLY}},
		{name: "rnoatime", opts: []string{"rnoatime"}, want: MountOptions{AttrSet: unix.MOUNT_ATTR_NOATIME, AttrClr: unix.MOUNT_ATTR__ATIME}},
		{name: "rstrictatime", opts: []string{"rstrictatime"}, want: MountOptions{AttrSet: unix.MOUNT_ATTR_STRICTATIME, AttrClr: unix.MOUNT_ATTR__ATIME}},
		{name: "rnoatime then rrelatime", opts: []string{"rnoatime", "rrelatime"}, want: MountOptions{AttrSet: unix.MOUNT_ATTR_RELATIME, AttrClr: unix.MOUNT_ATTR__ATIME}},
		{name: "ratime", opts: []string{"ratime"}, want: MountOptions{AttrClr: unix.MOUNT_ATTR__ATIME}},
		{name: "idmap", opts: []string{"bind", "idmap"}, want: MountOptions{Flags: unix.MS_BIND, Idmap: true}},
		{name: "ridmap", opts: []string{"ridmap"}, want: MountOptions{Idmap: true, Recursive: true}},
		{
			name: "data kept in order",
			opts: []string{"nosuid", "mode=755", "size=65536k", "strictatime", "newinstance", "ptmxmode=0666", "gid=5"},
			want: MountOptions{Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k,newinstance,ptmxmode=0666,gid=5"},
		},
		{name: "overlay data", opts: []string{"lowerdir=/a:/b", "upperdir=/u", "workdir=/w"}, want: MountOptions{Data: "lowerdir=/a:/b,upperdir=/u,workdir=/w"}},
		{name: "tmpcopyup ignored", opts: []string{"tmpcopyup", "mode=700"}, want: MountOptions{Data: "mode=700"}},
		{name: "nosymfollow", opts: []string{"nosymfollow"}, want: MountOptions{Flags: unix.MS_NOSYMFOLLOW}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMountOptions(tt.opts)
			if err != nil {
				t.Fatalf("ParseMountOptions(%q): %v", tt.opts, err)
			}
			if got.Flags != tt.want.Flags || got.ClearFlags != tt.want.ClearFlags ||
				got.AttrSet != tt.want.AttrSet || got.AttrClr != tt.want.AttrClr ||
				got.Data != tt.want.Data || got.Idmap != tt.want.Idmap || got.Recursive != tt.want.Recursive ||
				!slices.Equal(got.Propagation, tt.want.Propagation) {
				t.Errorf("ParseMountOptions(%q) =\n %+v\nwant\n %+v", tt.opts, got, tt.want)
			}
		})
	}
}

func TestParseMountOptionsMalformed(t *testing.T) {
	for _, opts := range [][]string{
		{"ro", "size=1,mode=2"},
		{"a\x00b"},
		{"=value"},
	} {
		_, err := ParseMountOptions(opts)
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseMountOptions(%q) error = %v, want ErrInvalidArgument", opts, err)
		}
	}
}

func TestParseMountInfo(t *testing.T) {
	text := `22 27 0:21 / /proc rw,relatime - proc proc rw
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:5 - cgroup cgroup rw,cpu,cpuacct
41 31 0:38 /sub /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 27 0:40 / /mnt/with\040space rw - tmpfs tmpfs rw
`
	got := parseMountInfo(text)
	want := []mountInfo{
		{root: "/", mountpoint: "/proc", fstype: "proc", superOpts: "rw"},
		{root: "/", mountpoint: "/sys/fs/cgroup/cpu,cpuacct", fstype: "cgroup", superOpts: "rw,cpu,cpuacct"},
		{root: "/sub", mountpoint: "/sys/fs/cgroup/unified", fstype: "cgroup2", superOpts: "rw"},
		{root: "/", mountpoint: "/mnt/with space", fstype: "tmpfs", superOpts: "rw"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseMountInfo =\n %+v\nwant\n %+v", got, want)
	}
}

func TestCgroupInfo(t *testing.T) {
	mounts := []mountInfo{
		{root: "/", mountpoint: "/sys/fs/cgroup/cpu,cpuacct", fstype: "cgroup", superOpts: "rw,cpuacct,cpu"},
		{root: "/", mountpoint: "/sys/fs/cgroup/systemd", fstype: "cgroup", superOpts: "rw,xattr,name=systemd"},
		{root: "/", mountpoint: "/sys/fs/cgroup/unified", fstype: "cgroup2", superOpts: "rw"},
		{root: "/", mountpoint: "/rootfs/sys/fs/cgroup/cpu", fstype: "cgroup", superOpts: "rw,cpu"},
	}
	paths := parseProcCgroup("2:cpu,cpuacct:/c1\n1:name=systemd:/sys\n0::/u\n")
	ci := newCgroupInfo(mounts, paths, "/rootfs")
	if ci.unified || len(ci.v1) != 2 || ci.v2 == nil {
		t.Fatalf("newCgroupInfo: unified=%v v1=%d v2=%v", ci.unified, len(ci.v1), ci.v2)
	}
	if p, ok := ci.pathFor(ci.v1[0]); !ok || p != "/c1" {
		t.Errorf("pathFor(cpu,cpuacct) = %q, %v", p, ok)
	}
	if p, ok := ci.pathFor(ci.v1[1]); !ok || p != "/sys" {
		t.Errorf("pathFor(systemd) = %q, %v", p, ok)
	}
	if got := hostCgroupDir(ci.v1[0], "/c1"); got != "/sys/fs/cgroup/cpu,cpuacct/c1" {
		t.Errorf("hostCgroupDir = %q", got)
	}
	if got := hostCgroupDir(mountInfo{root: "/a", mountpoint: "/m"}, "/b"); got != "/m" {
		t.Errorf("hostCgroupDir outside the mount root = %q, want /m", got)
	}
	v2 := newCgroupInfo([]mountInfo{{root: "/", mountpoint: "/sys/fs/cgroup", fstype: "cgroup2"}}, paths, "/rootfs")
	if !v2.unified {
		t.Errorf("pure cgroup2 layout not detected as unified")
	}
}
