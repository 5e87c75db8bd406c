package container

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/oci/linux/cgroup"
)

func TestEventJSON(t *testing.T) {
	tests := []struct {
		ev   Event
		want string
	}{
		{Event{Type: "oom", ID: "c1"}, `{"type":"oom","id":"c1"}`},
		{Event{Type: "stats", ID: "c1", Data: &cgroup.Stats{Pids: cgroup.PidsStats{Current: 2}}}, `"pids":{"current":2}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(&tt.ev)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tt.want) {
			t.Errorf("%+v encodes as %s, want %s in it", tt.ev, b, tt.want)
		}
	}
}

// statsEvent is the part of runc's events JSON the tests read.
type statsEvent struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data *struct {
		CPU struct {
			Usage struct {
				Total uint64 `json:"total"`
			} `json:"usage"`
		} `json:"cpu"`
		Memory struct {
			Usage struct {
				Usage uint64 `json:"usage"`
				Limit uint64 `json:"limit"`
			} `json:"usage"`
			Raw map[string]uint64 `json:"raw"`
		} `json:"memory"`
		Pids struct {
			Current uint64 `json:"current"`
			Limit   uint64 `json:"limit"`
		} `json:"pids"`
	} `json:"data"`
}

func TestRootEventsStats(t *testing.T) {
	r := newRT(t)
	c := r.newContainer(true, func(s *specs.Spec) {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: i64(50)}
	}, "sleep", "1000")
	out := r.ok("events", "--stats", c.id)
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 0 {
		t.Errorf("events --stats printed %d lines, want 1: %q", n+1, out)
	}
	var ev statsEvent
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("events --stats: %q: %v", out, err)
	}
	if ev.Type != "stats" || ev.ID != c.id || ev.Data == nil {
		t.Fatalf("events --stats = %s, want type stats, id %s and data", out, c.id)
	}
	if ev.Data.Memory.Usage.Usage == 0 {
		t.Errorf("memory.usage.usage is 0: %s", out)
	}
	if ev.Data.Pids.Current != 1 || ev.Data.Pids.Limit != 50 {
		t.Errorf("pids = %+v, want current 1 limit 50", ev.Data.Pids)
	}
	r.fails([]string{"events", "--stats", "gt-does-not-exist"}, "gt-does-not-exist")
	r.fails([]string{"events", "--interval", "0s", c.id}, "--interval")
}

// events starts "events --interval 100ms id" and returns its lines.
func (r *rt) events(id string) (<-chan string, *exec.Cmd) {
	r.t.Helper()
	cmd := exec.Command(r.bin, "--root", r.root, "events", "--interval", "100ms", id)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines, cmd
}

// safetyNet bounds waits for things that must happen; it is not a timing
// assertion, only a way to fail instead of hanging.
const safetyNet = 2 * time.Minute

func TestRootEventsUntilStop(t *testing.T) {
	r := newRT(t)
	c := r.newContainer(true, nil, "sleep", "1000")
	lines, cmd := r.events(c.id)
	for n := 0; n < 2; n++ {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("events exited before printing stats: %v", cmd.Wait())
			}
			var ev statsEvent
			if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Type != "stats" || ev.ID != c.id || ev.Data == nil {
				t.Fatalf("event line %q: want a stats event of %s (%v)", l, c.id, err)
			}
		case <-time.After(safetyNet):
			t.Fatal("no stats event")
		}
	}
	r.ok("kill", c.id, "KILL")
	done := make(chan error, 1)
	go func() {
		for range lines {
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("events after the container stopped: %v, want exit 0", err)
		}
	case <-time.After(safetyNet):
		t.Fatal("events did not exit after the container stopped")
	}
	r.fails([]string{"events", c.id}, c.id, "stopped")
}

func TestRootEventsOOM(t *testing.T) {
	v1(t, "memory")
	r := newRT(t)
	c := r.newContainer(true, func(s *specs.Spec) {
		mem := &specs.LinuxMemory{Limit: i64(16 << 20)}
		if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
			mem.Swap = i64(16 << 20)
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.Memory = mem
	}, "sh", "-c", "while true; do dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; sleep 0.2; done")
	lines, _ := r.events(c.id)
	deadline := time.After(safetyNet)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("events exited without an oom event")
			}
			var ev statsEvent
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("event line %q: %v", l, err)
			}
			if ev.Type == "oom" {
				if ev.ID != c.id || ev.Data != nil || l != `{"type":"oom","id":"`+c.id+`"}` {
					t.Errorf("oom event %q, want {\"type\":\"oom\",\"id\":%q}", l, c.id)
				}
				return
			}
			if ev.Type != "stats" {
				t.Fatalf("event line %q: unknown type", l)
			}
		case <-deadline:
			t.Fatal("no oom event while dd is OOM-killed in a loop")
		}
	}
}
