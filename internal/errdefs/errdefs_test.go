package errdefs

import "testing"

func TestTrimKinds(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		// A kind given twice, as a wrapped answer of the shim repeats it.
		{"shim Kill: kill c1: process has exited: not found: not found", "shim Kill: kill c1: process has exited: not found"},
		// Words that never tell more than the text before them.
		{"container s1 is already running: failed precondition", "container s1 is already running"},
		{"linux.resources.pids.limit -1: negative: invalid argument", "linux.resources.pids.limit -1: negative"},
		{"x: invalid argument: invalid argument", "x"},
		// A kind the text says in words.
		{"no such container: nosuch: not found", "no such container: nosuch"},
		{`container name "dup": already in use by container 0123: already exists`, `container name "dup": already in use by container 0123`},
		{"content sha256:ab: does not exist: not found", "content sha256:ab: does not exist"},
		// A kind word that carries the message stays.
		{`image "nope": not found`, `image "nope": not found`},
		{`snapshot "k": already exists`, `snapshot "k": already exists`},
		{"registry: unavailable", "registry: unavailable"},
		// A runtime's exit status stays at the end.
		{`stats of "c1": it is stopped: failed precondition (exit status 1)`, `stats of "c1": it is stopped (exit status 1)`},
		// Nothing to trim.
		{"not found", "not found"},
		{": invalid argument", ": invalid argument"},
		{"disk on fire", "disk on fire"},
		{"executable file not found in $PATH", "executable file not found in $PATH"},
		{"", ""},
		// Every line of a joined error.
		{"no such container: a: not found\nno such container: b: not found", "no such container: a\nno such container: b"},
	} {
		if got := TrimKinds(tt.in); got != tt.want {
			t.Errorf("TrimKinds(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
