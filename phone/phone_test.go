package phone

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct{ in, e164, region string }{
		{"+375298603938", "+375298603938", "BY"},
		{"+375 29 860-39-38", "+375298603938", "BY"},
		{"375298603938", "+375298603938", "BY"},
		{" +44 20 7946 0958 ", "+442079460958", "GB"},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got.E164 != tc.e164 || got.Region != tc.region {
			t.Errorf("Parse(%q) = %+v, want %s %s", tc.in, got, tc.e164, tc.region)
		}
	}
	for _, bad := range []string{"", "hello", "+1", "+999123", "+3752986039381234"} {
		if got, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestDisplay(t *testing.T) {
	if got := Display("+375298603938"); got != "+375 29 860-39-38" {
		t.Errorf("Display = %q", got)
	}
	if got := Display("garbage"); got != "garbage" {
		t.Errorf("Display(garbage) = %q", got)
	}
}
