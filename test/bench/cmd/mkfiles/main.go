// Command mkfiles measures how fast this machine's file system creates
// small files, the bound of unpacking a layer of many small files: it
// creates N files of SIZE bytes in DIR (a new directory), in
// subdirectories of 100, from one goroutine with plain syscalls (openat
// O_CREAT|O_EXCL, write, close), and prints key=value lines: files, bytes,
// seconds, files_per_second.
//
//	go run ./test/bench/cmd/mkfiles [-n 10000] [-size 4096] DIR
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	n := flag.Int("n", 10000, "number of files")
	size := flag.Int("size", 4096, "bytes per file")
	flag.Parse()
	if flag.NArg() != 1 || *n < 1 || *size < 0 {
		fmt.Fprintln(os.Stderr, "usage: mkfiles [-n N] [-size BYTES] DIR")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *n, *size); err != nil {
		fmt.Fprintf(os.Stderr, "mkfiles: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string, n, size int) error {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	start := time.Now()
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%04d", i/100))
		if i%100 == 0 {
			if err := os.Mkdir(sub, 0o755); err != nil {
				return err
			}
		}
		p := filepath.Join(sub, fmt.Sprintf("f%05d", i))
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	d := time.Since(start)
	fmt.Printf("files=%d\nbytes=%d\nseconds=%.3f\nfiles_per_second=%.0f\n", n, int64(n)*int64(size), d.Seconds(), float64(n)/d.Seconds())
	return nil
}
