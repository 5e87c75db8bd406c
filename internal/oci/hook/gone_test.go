package hook

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// assertGone fails unless process pid is gone (or a zombie) within a generous
// grace period; the kill is asynchronous, so this polls rather than times.
func assertGone(t *testing.T, pid string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return
		}
		if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
			return
		}
		if time.Now().After(deadline) {
			if n, err := strconv.Atoi(pid); err == nil {
				syscall.Kill(n, syscall.SIGKILL)
			}
			t.Fatalf("process %s survived the hook timeout: %s", pid, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
