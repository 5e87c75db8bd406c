package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/client"
)

func TestNewRunShutdown(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gantryd.toml")
	body := "snapshotter = \"native\"\n[registry]\nconfig_dir = \"" + filepath.Join(dir, "etc") + "\"\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "gantryd.sock")
	opts := Options{ConfigPath: cfg, Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"), Address: sock, LogLevel: "error"}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	// A second daemon on the same root is refused, and leaves the first alone.
	opts2 := opts
	opts2.Address, opts2.State = filepath.Join(dir, "other.sock"), filepath.Join(dir, "state2")
	if _, err := New(opts2); err == nil || !strings.Contains(err.Error(), "in use by another gantryd") {
		t.Errorf("second New: err = %v, want the root in use", err)
	}

	c, err := client.New(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.GetSnapshotter() != SnapshotterNative || info.GetRoot() != opts.Root || int(info.GetPid()) != os.Getpid() {
		t.Errorf("info = %v", info)
	}
	imgs, err := c.ListImages(context.Background())
	if err != nil || len(imgs) != 0 {
		t.Errorf("ListImages on a new root = %v, %v; want none", imgs, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
		done <- nil
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context ended")
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after shutdown: %v", err)
	}
	// The lock is released: the root can be opened again.
	d2, err := New(opts)
	if err != nil {
		t.Fatalf("New after shutdown: %v", err)
	}
	d2.Close()
}
