package identity

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Switch changes the calling process to u: setgroups(u.AdditionalGids),
// setresgid(u.GID), setresuid(u.UID), and umask(*u.Umask) when set. The
// permitted capabilities of the calling thread are kept across the uid change
// (PR_SET_KEEPCAPS); the effective set is emptied by the kernel and is set by
// capability.Apply, which must follow on the same thread. setgroups is
// skipped when it is denied in a user namespace (/proc/self/setgroups says
// "deny") and no additional gids are asked for.
func Switch(u specs.User) error {
	gids := make([]int, len(u.AdditionalGids))
	for i, g := range u.AdditionalGids {
		gids[i] = int(g)
	}
	if err := setgroups(gids); err != nil {
		return err
	}
	// syscall's set*id functions apply the change to all threads, through
	// the C library when cgo is linked and AllThreadsSyscall otherwise.
	if err := syscall.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("process.user.gid: setresgid %d: %w", u.GID, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set PR_SET_KEEPCAPS: %w", err)
	}
	if err := syscall.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("process.user.uid: setresuid %d: %w", u.UID, err)
	}
	// keepcaps is cleared by execve anyway; clear it now so that nothing
	// later in the init relies on it.
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear PR_SET_KEEPCAPS: %w", err)
	}
	if u.Umask != nil {
		if *u.Umask > 0o777 {
			return fmt.Errorf("process.user.umask: %#o is out of range", *u.Umask)
		}
		unix.Umask(int(*u.Umask))
	}
	return nil
}

func setgroups(gids []int) error {
	err := syscall.Setgroups(gids)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EPERM) && len(gids) == 0 && setgroupsDenied() {
		return nil
	}
	if len(gids) == 0 {
		return fmt.Errorf("clear supplementary groups: %w", err)
	}
	return fmt.Errorf("process.user.additionalGids: setgroups %v: %w", gids, err)
}

// setgroupsDenied reports whether /proc/self/setgroups forbids setgroups in
// the current user namespace.
func setgroupsDenied() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && string(bytes.TrimSpace(b)) == "deny"
}
