package task

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// LogEntry is one line of a container's json-file log.
type LogEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// LogReadOptions configure ReadLog.
type LogReadOptions struct {
	// Tail sends only the last Tail entries already written (< 0: all).
	Tail int64
	// Follow keeps reading new entries, across rotations, until Done
	// reports true and everything written before that has been read.
	Follow bool
	Done   func() bool
	// Ready is called once the reader is positioned (before anything is
	// sent), so a caller can start the container without losing output.
	Ready func() error
	// MaxFiles is how many files rotation keeps (path, path.1, ...).
	MaxFiles int
}

// A follower looks for new lines (and for the end of the task) after
// minPoll, doubling the wait while nothing happens up to maxPoll. A short
// first wait matters: `gantry run` waits for the follower to finish before
// it reports the exit, and a fixed 100 ms poll cost a short-lived container
// up to 100 ms (measured by scripts/bench-run.sh).
const (
	minPoll = 2 * time.Millisecond
	maxPoll = 100 * time.Millisecond
)

// ReadLog sends the entries of the rotating log at path to fn.
func ReadLog(ctx context.Context, path string, o LogReadOptions, fn func(LogEntry) error) error {
	if o.MaxFiles <= 0 {
		o.MaxFiles = 3
	}
	var backlog []LogEntry
	if o.Tail != 0 {
		// Old files first, oldest first.
		for i := o.MaxFiles - 1; i >= 1; i-- {
			if err := readAll(path+"."+strconv.Itoa(i), func(e LogEntry) { backlog = appendTail(backlog, e, o.Tail) }); err != nil {
				return err
			}
		}
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		f = nil
	} else if err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var r *lineReader
	if f != nil {
		r = newLineReader(f)
		for {
			e, ok, err := next(r)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if o.Tail != 0 {
				backlog = appendTail(backlog, e, o.Tail)
			}
		}
	}
	if o.Ready != nil {
		if err := o.Ready(); err != nil {
			return err
		}
	}
	for _, e := range backlog {
		if err := fn(e); err != nil {
			return err
		}
	}
	if !o.Follow {
		return nil
	}
	wait := minPoll
	for {
		done := o.Done != nil && o.Done()
		if f != nil {
			for {
				e, ok, err := next(r)
				if err != nil {
					return err
				}
				if !ok {
					break
				}
				wait = minPoll
				if err := fn(e); err != nil {
					return err
				}
			}
		}
		// Rotated (or created): finish the old file, then open the new.
		if nf, err := os.Open(path); err == nil {
			if f == nil || !sameFile(f, nf) {
				if f != nil {
					f.Close()
				}
				f, r = nf, newLineReader(nf)
				continue
			}
			nf.Close()
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		if wait *= 2; wait > maxPoll {
			wait = maxPoll
		}
	}
}

func sameFile(a, b *os.File) bool {
	sa, err1 := a.Stat()
	sb, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// lineReader reads complete lines; a partial last line (being written)
// is kept until its end arrives.
type lineReader struct {
	r       *bufio.Reader
	pending []byte
}

func newLineReader(f *os.File) *lineReader { return &lineReader{r: bufio.NewReaderSize(f, 64<<10)} }

// next returns the next entry; ok is false at the (current) end.
func next(lr *lineReader) (LogEntry, bool, error) {
	for {
		line, err := lr.r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			lr.pending = append(lr.pending, line...)
			return LogEntry{}, false, nil
		}
		if err != nil {
			return LogEntry{}, false, fmt.Errorf("read container log: %w", err)
		}
		if len(lr.pending) > 0 {
			line = append(lr.pending, line...)
			lr.pending = nil
		}
		var e LogEntry
		if err := json.Unmarshal(line, &e); err != nil {
			continue // a damaged line is skipped
		}
		return e, true, nil
	}
}

func readAll(path string, fn func(LogEntry)) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	defer f.Close()
	r := newLineReader(f)
	for {
		e, ok, err := next(r)
		if err != nil || !ok {
			return err
		}
		fn(e)
	}
}

func appendTail(b []LogEntry, e LogEntry, tail int64) []LogEntry {
	b = append(b, e)
	if tail > 0 && int64(len(b)) > tail {
		b = b[1:]
	}
	return b
}
