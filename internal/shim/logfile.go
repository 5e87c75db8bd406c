package shim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// Log format: one JSON object a line, as docker's json-file driver writes:
//
//	{"log":"hello\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}
//
// A line longer than maxLine is split into several entries; only the last
// one ends in "\n" (as docker's 16 KiB partial messages). When the file
// would grow past maxSize it is rotated: path.1 is renamed path.2 and so on,
// path becomes path.1, and files beyond maxFiles are removed.

const (
	defaultLogMaxSize  = 10 << 20
	defaultLogMaxFiles = 3
	maxLine            = 16 << 10
)

// logEntry is one line of the log.
type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// jsonLog is a rotating JSON-lines log shared by every stream of a
// container.
type jsonLog struct {
	mu       sync.Mutex
	path     string
	maxSize  int64
	maxFiles int
	f        *os.File
	size     int64
	now      func() time.Time
}

func openLog(path string, maxSize int64, maxFiles int) (*jsonLog, error) {
	if maxSize <= 0 {
		maxSize = defaultLogMaxSize
	}
	if maxFiles <= 0 {
		maxFiles = defaultLogMaxFiles
	}
	l := &jsonLog{path: path, maxSize: maxSize, maxFiles: maxFiles, now: time.Now}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *jsonLog) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open container log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open container log: %w", err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// write appends one entry.
func (l *jsonLog) write(stream string, line []byte) error {
	data, err := json.Marshal(logEntry{Log: string(line), Stream: stream, Time: l.now().UTC()})
	if err != nil {
		return err
	}
	data = append(data, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("container log %s: closed", l.path)
	}
	if l.size > 0 && l.size+int64(len(data)) > l.maxSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(data)
	l.size += int64(n)
	return err
}

// rotate shifts path.N-1 to path.N ... path to path.1 and reopens path.
func (l *jsonLog) rotate() error {
	l.f.Close()
	l.f = nil
	os.Remove(l.path + "." + strconv.Itoa(l.maxFiles-1))
	for i := l.maxFiles - 2; i >= 1; i-- {
		os.Rename(l.path+"."+strconv.Itoa(i), l.path+"."+strconv.Itoa(i+1))
	}
	if l.maxFiles > 1 {
		if err := os.Rename(l.path, l.path+".1"); err != nil {
			return fmt.Errorf("rotate container log: %w", err)
		}
	} else if err := os.Truncate(l.path, 0); err != nil {
		return fmt.Errorf("rotate container log: %w", err)
	}
	return l.open()
}

func (l *jsonLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// copyLines writes r to the log as stream, one entry a line, until EOF.
func (l *jsonLog) copyLines(stream string, r io.Reader) {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			l.write(stream, line)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return
		}
	}
}
