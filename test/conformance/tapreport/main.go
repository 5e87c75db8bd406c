package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// execResult is what one validation executable reported.
type execResult struct {
	name     string
	tap      stream
	exit     int
	notRun   bool // the script skipped it: the run's time budget was spent
	timeout  int
	failures []string // check keys, one per failing check
	passes   map[string]bool
	counts   [3]int // indexed by outcome
}

// key names a check in the allow-list: "<executable>: <TAP description>".
func key(exe, desc string) string {
	return exe + ": " + desc
}

// execFailure returns the description of the executable-level failure, or
// "" when the executable ran to completion and kept its plan.
func (r *execResult) execFailure() string {
	switch {
	case r.notRun:
		return "executable not run: time budget of the run spent"
	case r.exit == 124 || r.exit == 137:
		return fmt.Sprintf("executable timed out after %ds", r.timeout)
	case r.exit != 0:
		return fmt.Sprintf("executable exited with status %d", r.exit)
	case r.tap.bailed:
		return "Bail out! " + r.tap.bailOut
	}
	return r.tap.planProblem()
}

// tally fills the counts, failures and passes of r from its TAP stream and
// exit status.
func (r *execResult) tally() {
	r.passes = map[string]bool{}
	for _, c := range r.tap.checks {
		r.counts[c.outcome]++
		k := key(r.name, c.description)
		switch c.outcome {
		case failed:
			r.failures = append(r.failures, k)
		case passed:
			r.passes[k] = true
		}
	}
	if f := r.execFailure(); f != "" {
		r.counts[failed]++
		r.failures = append(r.failures, key(r.name, f))
	}
}

// load reads results/<name>.tap and results/<name>.exit.
func load(dir, name string, timeout int) (*execResult, error) {
	r := &execResult{name: name, timeout: timeout}
	f, err := os.Open(filepath.Join(dir, name+".tap"))
	if err != nil {
		return nil, fmt.Errorf("read TAP of %s: %w", name, err)
	}
	defer f.Close()
	if r.tap, err = parseTAP(f); err != nil {
		return nil, fmt.Errorf("%s.tap: %w", name, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, name+".exit"))
	if err != nil {
		return nil, fmt.Errorf("read exit status of %s: %w", name, err)
	}
	switch status := strings.TrimSpace(string(b)); status {
	case "not-run":
		r.notRun = true
	default:
		if r.exit, err = strconv.Atoi(status); err != nil {
			return nil, fmt.Errorf("%s.exit: %w", name, err)
		}
	}
	r.tally()
	return r, nil
}

// summary is the comparison of a run with the allow-list.
type summary struct {
	counts     [3]int
	unexpected []string // failing checks not on the allow-list (sorted, unique)
	allowed    []string // failing checks on the allow-list
	fixed      []string // allow-list entries that passed and did not fail
	unseen     []string // allow-list entries not reported at all
	all        []string // every failing check, sorted, unique
}

func compare(results []*execResult, al allowList) summary {
	var s summary
	failing := map[string]bool{}
	passing := map[string]bool{}
	for _, r := range results {
		for i := range s.counts {
			s.counts[i] += r.counts[i]
		}
		for _, k := range r.failures {
			failing[k] = true
		}
		for k := range r.passes {
			passing[k] = true
		}
	}
	for k := range failing {
		s.all = append(s.all, k)
		if _, ok := al.reason[k]; ok {
			s.allowed = append(s.allowed, k)
		} else {
			s.unexpected = append(s.unexpected, k)
		}
	}
	for _, k := range al.entries {
		switch {
		case failing[k]:
		case passing[k]:
			s.fixed = append(s.fixed, k)
		default:
			s.unseen = append(s.unseen, k)
		}
	}
	sort.Strings(s.all)
	sort.Strings(s.unexpected)
	sort.Strings(s.allowed)
	return s
}

func (s summary) write(w io.Writer, results []*execResult) {
	fmt.Fprintf(w, "%-40s %6s %6s %7s %4s\n", "executable", "passed", "failed", "skipped", "exit")
	for _, r := range results {
		fmt.Fprintf(w, "%-40s %6d %6d %7d %4d\n", r.name, r.counts[passed], r.counts[failed], r.counts[skipped], r.exit)
	}
	if len(s.allowed) > 0 {
		fmt.Fprintf(w, "\n%d failing checks are on the allow-list\n", len(s.allowed))
	}
	for _, k := range s.fixed {
		fmt.Fprintf(w, "fixed, remove from allow-list: %s\n", k)
	}
	for _, k := range s.unseen {
		fmt.Fprintf(w, "allow-listed but not reported by this run: %s\n", k)
	}
	if len(s.unexpected) > 0 {
		fmt.Fprintf(w, "\nFAIL: %d failing checks are not on the allow-list:\n", len(s.unexpected))
		for _, k := range s.unexpected {
			fmt.Fprintf(w, "  %s\n", k)
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", s.counts[passed], s.counts[failed], s.counts[skipped])
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tapreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("results", "", "directory holding <executable>.tap and <executable>.exit")
	allow := fs.String("allow", "", "allow-list file of known failures")
	timeout := fs.Int("timeout", 0, "per-executable timeout in seconds (for messages)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || *allow == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: tapreport -results DIR -allow FILE EXECUTABLE...")
		return 2
	}
	f, err := os.Open(*allow)
	if err != nil {
		fmt.Fprintf(stderr, "tapreport: read allow-list: %v\n", err)
		return 2
	}
	al, err := parseAllowList(f, *allow)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "tapreport: %v\n", err)
		return 2
	}
	var results []*execResult
	for _, name := range fs.Args() {
		r, err := load(*dir, name, *timeout)
		if err != nil {
			fmt.Fprintf(stderr, "tapreport: %v\n", err)
			return 2
		}
		results = append(results, r)
	}
	s := compare(results, al)
	var b strings.Builder
	for _, k := range s.all {
		b.WriteString(k + "\n")
	}
	if err := os.WriteFile(filepath.Join(*dir, "failures.txt"), []byte(b.String()), 0o644); err != nil {
		fmt.Fprintf(stderr, "tapreport: write failures.txt: %v\n", err)
		return 2
	}
	s.write(stdout, results)
	if len(s.unexpected) > 0 {
		return 1
	}
	return 0
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
