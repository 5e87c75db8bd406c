package main

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAllowList(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		entries []string
		reasons map[string]string
		wantErr string
		errIs   error
	}{
		{
			name:    "header only",
			in:      "# Known failures.\n# More header.\n",
			entries: nil,
		},
		{
			name: "entries with reasons, shared reason",
			in: "# header\n\n" +
				"# no AppArmor on CI\n" +
				"linux_process_apparmor_profile: executable exited with status 1\n\n" +
				"# kernel memory accounting is gone\n# since Linux 6.1\n" +
				"linux_cgroups_memory: memory kernel is set correctly\n" +
				"linux_cgroups_memory: memory kernelTCP is set correctly\n",
			entries: []string{
				"linux_process_apparmor_profile: executable exited with status 1",
				"linux_cgroups_memory: memory kernel is set correctly",
				"linux_cgroups_memory: memory kernelTCP is set correctly",
			},
			reasons: map[string]string{
				"linux_process_apparmor_profile: executable exited with status 1": "no AppArmor on CI",
				"linux_cgroups_memory: memory kernelTCP is set correctly":         "kernel memory accounting is gone since Linux 6.1",
			},
		},
		{
			name:    "entry without reason",
			in:      "# header\n\nstart: exit status 1\n",
			errIs:   errNoReason,
			wantErr: "known.txt:3:",
		},
		{
			name:    "entry without executable",
			in:      "# reason\nexit status 1\n",
			wantErr: "want \"<executable>: <TAP description>\"",
		},
		{
			name:    "duplicate entry",
			in:      "# reason\nstart: x\n# again\nstart: x\n",
			wantErr: "listed twice",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			al, err := parseAllowList(strings.NewReader(tt.in), "known.txt")
			if tt.wantErr != "" || tt.errIs != nil {
				if err == nil {
					t.Fatalf("got no error, want %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got error %q, want it to contain %q", err, tt.wantErr)
				}
				if tt.errIs != nil && !errors.Is(err, tt.errIs) {
					t.Errorf("got error %v, want errors.Is %v", err, tt.errIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAllowList: %v", err)
			}
			if strings.Join(al.entries, "\n") != strings.Join(tt.entries, "\n") {
				t.Errorf("entries: got %q, want %q", al.entries, tt.entries)
			}
			for k, want := range tt.reasons {
				if got := al.reason[k]; got != want {
					t.Errorf("reason of %q: got %q, want %q", k, got, want)
				}
			}
		})
	}
}
