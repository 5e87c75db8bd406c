// Package errdefs defines the small set of error kinds used across Gantry.
// Code wraps one of the sentinel errors with fmt.Errorf("...: %w", ...) and
// callers test the kind with errors.Is. Kinds are turned into gRPC codes or
// exit statuses only at the edges (API boundary, CLI).
package errdefs

import (
	"errors"
	"strings"
)

// The error kinds. Wrap them; never compare error strings.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrFailedPrecondition = errors.New("failed precondition")
	ErrUnavailable        = errors.New("unavailable")
	ErrNotImplemented     = errors.New("not implemented")
)

// IsNotFound reports whether err is of kind ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsAlreadyExists reports whether err is of kind ErrAlreadyExists.
func IsAlreadyExists(err error) bool { return errors.Is(err, ErrAlreadyExists) }

// IsInvalidArgument reports whether err is of kind ErrInvalidArgument.
func IsInvalidArgument(err error) bool { return errors.Is(err, ErrInvalidArgument) }

// IsFailedPrecondition reports whether err is of kind ErrFailedPrecondition.
func IsFailedPrecondition(err error) bool { return errors.Is(err, ErrFailedPrecondition) }

// IsNotImplemented reports whether err is of kind ErrNotImplemented.
func IsNotImplemented(err error) bool { return errors.Is(err, ErrNotImplemented) }

// saidBy lists, for the kinds whose word can carry a message ("image x:
// not found"), the words that already say it, so that the kind's word
// after them adds nothing.
var saidBy = []struct {
	kind  error
	words []string
}{
	{ErrNotFound, []string{"not found", "no such", "does not exist"}},
	{ErrAlreadyExists, []string{"already"}},
	{ErrUnavailable, []string{"unavailable"}},
	{ErrNotImplemented, []string{"not implemented", "not supported"}},
	// The word of these two never tells the user more than the text
	// before it (which argument, which condition): always dropped.
	{ErrFailedPrecondition, []string{""}},
	{ErrInvalidArgument, []string{""}},
}

// TrimKinds returns an error's text without the kind words at the end of
// its lines that repeat what the line already says: a kind given twice
// (`process has exited: not found: not found`), "failed precondition" and
// "invalid argument" (the text before them names the condition or the
// argument), and a kind the text says in words (`no such container: x:
// not found`). A kind word that carries the message stays (`image "x": not
// found`), and so does a runtime's trailing " (exit status N)". Only the
// words go: the error itself keeps its kind for errors.Is, gRPC codes and
// exit codes. gantryd's API and the gantry CLI show errors through it.
func TrimKinds(msg string) string {
	if !strings.Contains(msg, "\n") {
		return trimLine(msg)
	}
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		lines[i] = trimLine(l)
	}
	return strings.Join(lines, "\n")
}

func trimLine(line string) string {
	var tail string
	if i := strings.LastIndex(line, " (exit status "); i >= 0 && strings.HasSuffix(line, ")") {
		line, tail = line[:i], line[i:]
	}
	for trimmed := true; trimmed; {
		trimmed = false
		for _, s := range saidBy {
			word := ": " + s.kind.Error()
			rest, ok := strings.CutSuffix(line, word)
			if !ok || rest == "" {
				continue
			}
			if says(strings.ToLower(rest), s.words) {
				line, trimmed = rest, true
			}
			break
		}
	}
	return line + tail
}

func says(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
