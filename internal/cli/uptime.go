package cli

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's start time: 100 on
// every Linux architecture Gantry builds for.
const clockTicks = 100

// processStart returns when the process pid started, from its
// /proc/PID/stat and the boot time in /proc/stat (to a second or so), or
// false when it cannot tell (the process is gone, or the CLI does not
// share gantryd's PID namespace and /proc).
func processStart(pid int32) (time.Time, bool) {
	if pid <= 0 {
		return time.Time{}, false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}, false
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it follow the last ')'. starttime is field 22.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return time.Time{}, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	boot, ok := bootTime()
	if !ok {
		return time.Time{}, false
	}
	return boot.Add(time.Duration(ticks) * time.Second / clockTicks), true
}

// bootTime is when the machine booted, from /proc/stat's btime, read once
// per CLI process (ps asks it for every container).
var bootTime = sync.OnceValues(func() (time.Time, bool) {
	procStat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(procStat), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(boot, 0), true
		}
	}
	return time.Time{}, false
})

// upSince is docker's "Up ..." for a running container: how long its
// process has run, when the CLI can tell, as docker words durations.
func upSince(ctr *gantryv1.Container, now time.Time) string {
	start, ok := processStart(ctr.GetPid())
	// A start before the container was created is another process that
	// got the pid (or another PID namespace's): say nothing.
	if !ok || (ctr.GetCreatedAt() != nil && start.Before(ctr.GetCreatedAt().AsTime().Add(-2*time.Second))) {
		return "Up"
	}
	return "Up " + humanDuration(now.Sub(start))
}

// humanDuration words d as docker's STATUS column does ("5 seconds",
// "About a minute", "3 hours", "2 weeks").
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	switch m := int(d.Minutes()); {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	switch h := int(d.Hours() + 0.5); {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	default:
		return fmt.Sprintf("%d years", int(d.Hours())/24/365)
	}
}
