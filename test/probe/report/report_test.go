package report

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
		wantPID int
	}{
		{"plain", `{"pid":1}`, false, 1},
		{"noise before", "warning: x\n{\"pid\":7}\n", false, 7},
		{"no object", "nothing", true, 0},
		{"broken", `{"pid":`, true, 0},
	}
	for _, tt := range tests {
		r, err := Parse([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, wantErr %v", tt.name, err, tt.wantErr)
			continue
		}
		if err == nil && r.PID != tt.wantPID {
			t.Errorf("%s: pid = %d, want %d", tt.name, r.PID, tt.wantPID)
		}
	}
}

func TestHelpers(t *testing.T) {
	r := &Report{
		Caps: map[string]string{"CapEff": "0000000020000420", "CapBad": "zz"},
		Env:  []string{"A=1", "B=x=y", "C"},
		Mounts: []Mount{
			{Point: "/tmp", Options: "rw", SuperOptions: "rw,size=1k"},
			{Point: "/tmp", Options: "ro,nosuid", SuperOptions: "rw"},
		},
	}
	if v, err := r.Cap("CapEff"); err != nil || v != 0x20000420 {
		t.Errorf("Cap(CapEff) = %#x, %v", v, err)
	}
	if _, err := r.Cap("CapBad"); err == nil {
		t.Error("Cap(CapBad): no error")
	}
	if _, err := r.Cap("CapAmb"); err == nil {
		t.Error("Cap(CapAmb): no error for a missing set")
	}
	if v, ok := r.Getenv("B"); !ok || v != "x=y" {
		t.Errorf("Getenv(B) = %q, %v", v, ok)
	}
	if _, ok := r.Getenv("C"); ok {
		t.Error("Getenv(C) found a variable without '='")
	}
	m := r.MountAt("/tmp")
	if m == nil || !m.HasOption("nosuid") || m.HasOption("size=1k") || m.HasOption("nosu") {
		t.Errorf("MountAt(/tmp) = %+v: want the topmost mount", m)
	}
	if r.MountAt("/nope") != nil {
		t.Error("MountAt(/nope) != nil")
	}
}
