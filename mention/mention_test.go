package mention

import (
	"reflect"
	"strings"
	"testing"
)

func names(ts []Token) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func TestFind(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"@olga please check", []string{"olga"}},
		{"ask @Olga, then @ivan.", []string{"Olga", "ivan"}},
		{"(@olga)", []string{"olga"}},
		{"mail olga@example.com now", nil},
		{"a@b.c", nil},
		{"cc @olga@example.com.", []string{"olga@example.com"}},
		{"@@olga", nil},
		{"@ alone", nil},
		{"@. @- @_x", nil},
		{"@олег посмотри", []string{"олег"}},
		{"@olga@ivan", []string{"olga@ivan"}},
		{"end @olga", []string{"olga"}},
		{"@", nil},
		{"", nil},
	} {
		if got := names(Find(tc.text)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Find(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

func TestFindOffsets(t *testing.T) {
	text := "hi @олег."
	ts := Find(text)
	if len(ts) != 1 || text[ts[0].Start:ts[0].End] != "@олег" {
		t.Fatalf("Find(%q) = %+v", text, ts)
	}
}

func TestMatch(t *testing.T) {
	logins := []string{"olga@example.com", "ivan", "anna@a.example", "anna@b.example", "local"}
	for _, tc := range []struct{ name, want string }{
		{"OLGA@example.com", "olga@example.com"},
		{"olga", "olga@example.com"},
		{"Ivan", "ivan"},
		{"anna", ""}, // two agents: no guess
		{"anna@b.example", "anna@b.example"},
		{"nobody", ""},
		{"olga@other.example", ""},
	} {
		if got := Match(tc.name, logins); got != tc.want {
			t.Errorf("Match(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestSplit(t *testing.T) {
	segs := Split("ping @ivan and @nobody about <b>", []string{"ivan"})
	want := []Segment{{Text: "ping "}, {Text: "@ivan", Mention: true}, {Text: " and @nobody about <b>"}}
	if !reflect.DeepEqual(segs, want) {
		t.Errorf("Split = %+v, want %+v", segs, want)
	}
	var b strings.Builder
	for _, s := range Split("@ivan", []string{"ivan"}) {
		b.WriteString(s.Text)
	}
	if b.String() != "@ivan" {
		t.Errorf("segments join to %q", b.String())
	}
}

// FuzzFind checks that tokens lie inside the text, in order, and start with @.
func FuzzFind(f *testing.F) {
	for _, s := range []string{"@olga", "a@b.c", "@@", "(@x)", "@олег."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		at := 0
		for _, tk := range Find(text) {
			if tk.Start < at || tk.End > len(text) || tk.Start >= tk.End || text[tk.Start] != '@' ||
				text[tk.Start+1:tk.End] != tk.Name {
				t.Fatalf("Find(%q): bad token %+v", text, tk)
			}
			at = tk.End
		}
		var b strings.Builder
		for _, s := range Split(text, []string{"olga"}) {
			b.WriteString(s.Text)
		}
		if b.String() != text {
			t.Fatalf("Split(%q) joins to %q", text, b.String())
		}
	})
}
