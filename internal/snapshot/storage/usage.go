package storage

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/gantry-project/gantry/internal/snapshot"
)

// DiskUsage measures dir like du: the blocks allocated to every inode under
// it (dir included), each inode counted once however many hardlinks it has.
func DiskUsage(ctx context.Context, dir string) (snapshot.Usage, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]struct{}{}
	var u snapshot.Usage
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		k := inode{uint64(st.Dev), st.Ino}
		if _, dup := seen[k]; dup {
			return nil
		}
		seen[k] = struct{}{}
		u.Inodes++
		u.Size += st.Blocks * 512
		return nil
	})
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("measure disk usage of %q: %w", dir, err)
	}
	return u, nil
}
