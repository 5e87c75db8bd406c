package label

import (
	"fmt"
	"os"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// These are variables so that tests can point them at fixtures.
var (
	apparmorEnabledPath = "/sys/module/apparmor/parameters/enabled"
	selinuxEnforcePath  = "/sys/fs/selinux/enforce"
	attrDir             = "/proc/thread-self/attr"
)

// AppArmorEnabled reports whether the running kernel has AppArmor enabled.
func AppArmorEnabled() bool {
	b, err := os.ReadFile(apparmorEnabledPath)
	return err == nil && len(b) > 0 && b[0] == 'Y'
}

// SELinuxEnabled reports whether the running kernel has SELinux enabled (in
// either enforcing or permissive mode).
func SELinuxEnabled() bool {
	_, err := os.Stat(selinuxEnforcePath)
	return err == nil
}

// ApplyProcess arranges for the next execve of the calling thread to run
// under the AppArmor profile apparmorProfile and the SELinux label
// selinuxLabel. Empty strings do nothing. The caller must have its OS thread
// locked and execve from it.
func ApplyProcess(apparmorProfile, selinuxLabel string) error {
	if apparmorProfile != "" {
		if !AppArmorEnabled() {
			return fmt.Errorf("process.apparmorProfile: AppArmor is not enabled on this kernel: %w", errdefs.ErrNotImplemented)
		}
		// Kernels with LSM stacking have a per-LSM directory; older ones
		// only the shared attr/exec.
		path := attrDir + "/apparmor/exec"
		if _, err := os.Stat(path); err != nil {
			path = attrDir + "/exec"
		}
		if err := writeAttr(path, "exec "+apparmorProfile); err != nil {
			return fmt.Errorf("process.apparmorProfile: set profile %q: %w", apparmorProfile, err)
		}
	}
	if selinuxLabel != "" {
		if !SELinuxEnabled() {
			return fmt.Errorf("process.selinuxLabel: SELinux is not enabled on this kernel: %w", errdefs.ErrNotImplemented)
		}
		if err := writeAttr(attrDir+"/exec", selinuxLabel); err != nil {
			return fmt.Errorf("process.selinuxLabel: set label %q: %w", selinuxLabel, err)
		}
	}
	return nil
}

// writeAttr writes v to an LSM attribute file in a single write, as the
// kernel requires.
func writeAttr(path, v string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	n, err := f.Write([]byte(v))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != len(v) {
		err = fmt.Errorf("write %s: short write", path)
	}
	return err
}
