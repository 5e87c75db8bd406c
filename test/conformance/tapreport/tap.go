package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// outcome is the verdict of one TAP check.
type outcome int

const (
	passed outcome = iota
	failed
	skipped
)

// check is one "ok"/"not ok" line of a TAP stream.
type check struct {
	number      int
	description string
	outcome     outcome
}

// segment is one TAP document: a validation executable may print several,
// each starting with "TAP version 13" (linux_cgroups_cpus prints a second,
// empty one for cgroup v2).
type segment struct {
	// plan is the N of the segment's "1..N" line, or -1 when there was none.
	plan int
	// checks is the number of test lines in the segment.
	checks int
}

// stream is what the output of one validation executable reported.
type stream struct {
	checks   []check
	segments []segment
	// bailOut holds the reason of a "Bail out!" line, if any.
	bailOut string
	bailed  bool
}

// planProblem describes how the stream broke its plans, or returns "" when
// every segment that printed checks also printed a plan that matches them.
// Output with no checks and no plan is no problem: some executables (e.g.
// process_rlimits_fail) only report, by their exit status, that the runtime
// refused a config, and print nothing.
func (s stream) planProblem() string {
	for _, seg := range s.segments {
		switch {
		case seg.plan < 0 && seg.checks > 0:
			return fmt.Sprintf("printed %d checks without a TAP plan", seg.checks)
		case seg.plan >= 0 && seg.plan != seg.checks:
			return fmt.Sprintf("plan 1..%d but %d checks reported", seg.plan, seg.checks)
		}
	}
	return ""
}

var (
	testLine  = regexp.MustCompile(`^(not ok|ok)\b[ \t]*([0-9]+)?[ \t]*(.*)$`)
	planLine  = regexp.MustCompile(`^1\.\.([0-9]+)\b`)
	directive = regexp.MustCompile(`(?i)(^|[ \t])#[ \t]*(skip|todo)\S*(.*)$`)
)

// parseTAP reads a TAP stream. Only lines that start in column 0 are TAP
// lines: indented lines belong to YAML diagnostic blocks, which embed the
// TAP printed by runtimetest inside the container and must not be counted
// twice.
func parseTAP(r io.Reader) (stream, error) {
	var s stream
	cur := func() *segment {
		if len(s.segments) == 0 {
			s.segments = append(s.segments, segment{plan: -1})
		}
		return &s.segments[len(s.segments)-1]
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.HasPrefix(line, "TAP version ") {
			if len(s.segments) > 0 && (cur().plan >= 0 || cur().checks > 0) {
				s.segments = append(s.segments, segment{plan: -1})
			}
			continue
		}
		if m := planLine.FindStringSubmatch(line); m != nil {
			n, err := strconv.Atoi(m[1])
			if err != nil {
				return s, fmt.Errorf("parse plan %q: %w", line, err)
			}
			cur().plan = n
			continue
		}
		if strings.HasPrefix(line, "Bail out!") {
			s.bailed = true
			s.bailOut = strings.TrimSpace(strings.TrimPrefix(line, "Bail out!"))
			continue
		}
		m := testLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		c := check{outcome: passed}
		if m[1] == "not ok" {
			c.outcome = failed
		}
		if m[2] != "" {
			n, err := strconv.Atoi(m[2])
			if err != nil {
				return s, fmt.Errorf("parse test number in %q: %w", line, err)
			}
			c.number = n
		}
		desc := m[3]
		if d := directive.FindStringSubmatchIndex(desc); d != nil {
			kind := strings.ToLower(desc[d[4]:d[5]])
			reason := strings.TrimSpace(desc[d[6]:d[7]])
			desc = desc[:d[0]]
			switch {
			case kind == "skip":
				c.outcome = skipped
			case kind == "todo" && c.outcome == failed:
				// A failing TODO check is an expected failure.
				c.outcome = skipped
			}
			if strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(desc), "-")) == "" {
				desc = reason
			}
		}
		desc = strings.TrimSpace(desc)
		desc = strings.TrimSpace(strings.TrimPrefix(desc, "- "))
		if desc == "-" {
			desc = ""
		}
		c.description = desc
		s.checks = append(s.checks, c)
		cur().checks++
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("read TAP: %w", err)
	}
	return s, nil
}
