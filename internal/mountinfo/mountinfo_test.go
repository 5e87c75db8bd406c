package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:          "/plain",
		`/a\040b`:         "/a b",
		`/x\134y`:         `/x\y`,
		`/t\011n\012`:     "/t\tn\n",
		`/a\040b\\c`:      `/a b\\c`, // "\\c" is no escape
		`/end\04`:         `/end\04`, // too short
		`/end\040`:        "/end ",   // at the very end
		`/big\777`:        `/big\777`,
		`/nonoctal\089`:   `/nonoctal\089`,
		`\040\040`:        "  ",
		`/trailing\`:      `/trailing\`,
		`/two\134\040end`: `/two\ end`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
