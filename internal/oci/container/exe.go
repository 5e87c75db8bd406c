package container

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// sealedSelf returns a sealed, read-only in-memory copy of the running
// gantry-oci binary. The bootstrap and init processes are executed from it,
// so /proc/self/exe inside the container's namespaces points at the copy,
// never at the binary on the host: a container process cannot open it for
// writing (the seals forbid it) and cannot reach the host file through it
// (CVE-2019-5736).
func sealedSelf() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("open own binary: %w", err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat own binary: %w", err)
	}
	fd, err := unix.MemfdCreate("gantry-oci", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err != nil {
		// kernels before 6.3 do not know MFD_EXEC
		fd, err = unix.MemfdCreate("gantry-oci", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		if err != nil {
			return nil, fmt.Errorf("memfd_create: %w", err)
		}
	}
	mem := os.NewFile(uintptr(fd), "memfd:gantry-oci")
	size := st.Size()
	for off := int64(0); off < size; {
		n, err := unix.Sendfile(fd, int(src.Fd()), nil, int(size-off))
		if err != nil {
			mem.Close()
			return nil, fmt.Errorf("copy own binary to memfd: %w", err)
		}
		if n == 0 {
			break
		}
		off += int64(n)
	}
	if err := unix.Fchmod(fd, 0o555); err != nil {
		mem.Close()
		return nil, fmt.Errorf("chmod memfd: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		mem.Close()
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	return mem, nil
}
