// Package testproc answers the end-to-end tests' questions about host
// processes from /proc.
package testproc

import (
	"bytes"
	"os"
	"strconv"
)

// Alive tells whether pid is a live process: it exists and is not a
// zombie (a process whose parent died is reaped by whoever adopts it,
// which in a test's environment may never happen).
func Alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && !bytes.HasPrefix(bytes.TrimSpace(stat[i+1:]), []byte("Z"))
}
