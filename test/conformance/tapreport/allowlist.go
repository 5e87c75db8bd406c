package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

var errNoReason = errors.New("entry has no \"# reason\" comment line above it")

// allowList is the parsed known-failures file: every entry is a check key
// "<executable>: <TAP description>" that may fail without failing the run.
type allowList struct {
	// entries in file order.
	entries []string
	// reason of each entry: the comment lines just above it.
	reason map[string]string
}

// parseAllowList reads a known-failures file. Blank lines separate groups;
// lines starting with "#" are comments; any other line is an entry, taken
// verbatim (trimmed), and must follow at least one comment line of its
// group that gives the reason. Entries that share one reason may follow
// each other under a single comment. The header comment, separated from the
// first entry by a blank line, is not a reason.
func parseAllowList(r io.Reader, name string) (allowList, error) {
	al := allowList{reason: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	var comment []string
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			comment = nil
		case strings.HasPrefix(line, "#"):
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(line, "#")))
		default:
			if !strings.Contains(line, ": ") {
				return al, fmt.Errorf("%s:%d: entry %q: want \"<executable>: <TAP description>\"", name, lineNo, line)
			}
			if len(comment) == 0 {
				return al, fmt.Errorf("%s:%d: entry %q: %w", name, lineNo, line, errNoReason)
			}
			if _, dup := al.reason[line]; dup {
				return al, fmt.Errorf("%s:%d: entry %q: listed twice", name, lineNo, line)
			}
			al.entries = append(al.entries, line)
			al.reason[line] = strings.Join(comment, " ")
		}
	}
	if err := sc.Err(); err != nil {
		return al, fmt.Errorf("read %s: %w", name, err)
	}
	return al, nil
}
