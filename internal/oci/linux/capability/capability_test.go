package capability

import (
	"errors"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		want    int
		wantErr bool
	}{
		{"CAP_CHOWN", 0, false},
		{"CAP_SETPCAP", 8, false},
		{"CAP_SYS_ADMIN", 21, false},
		{"CAP_AUDIT_READ", 37, false},
		{"CAP_CHECKPOINT_RESTORE", 40, false},
		{"SYS_ADMIN", 0, true},
		{"cap_sys_admin", 0, true},
		{"", 0, true},
		{"CAP_NOPE", 0, true},
	}
	for _, tc := range tests {
		got, err := Parse(tc.name)
		if tc.wantErr {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `"`+tc.name+`"`) {
				t.Errorf("Parse(%q) error = %v, want invalid argument naming it", tc.name, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

func TestKnown(t *testing.T) {
	k := Known()
	if len(k) != maxKnown+1 {
		t.Fatalf("Known() has %d names, want %d", len(k), maxKnown+1)
	}
	for i, name := range k {
		if n, err := Parse(name); err != nil || n != i {
			t.Errorf("Known()[%d] = %q parses to %d, %v", i, name, n, err)
		}
	}
}

func TestLast(t *testing.T) {
	n, err := Last()
	if err != nil {
		t.Fatal(err)
	}
	// CAP_AUDIT_READ (37) exists since Linux 3.16.
	if n < 37 || n > 63 {
		t.Fatalf("Last() = %d", n)
	}
}

func TestNames(t *testing.T) {
	var s set
	s.add(0)
	s.add(21)
	s.add(40)
	if got, want := names(s), "[CAP_CHOWN CAP_SYS_ADMIN CAP_CHECKPOINT_RESTORE]"; got != want {
		t.Fatalf("names = %q, want %q", got, want)
	}
}
