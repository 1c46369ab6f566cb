package marker

import (
	"testing"
	"time"
)

func TestTrackerFindsTagsOfItsPhaseOnly(t *testing.T) {
	tr := New(3, 5, 2)
	old := New(2, 5, 1)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		tr.Sent(i, t0)
	}
	frame := []byte(`<li>` + tr.Text(1) + `</li><li>` + old.Text(2) + `</li><li>ldt03n12x</li><li>` + tr.Text(0) + `</li>`)
	tr.Observer(0)(frame, t0.Add(20*time.Millisecond))
	tr.Observer(0)(frame, t0.Add(time.Second)) // seen again later: the first sighting counts
	tr.Observer(1)([]byte(tr.Text(1)), t0.Add(50*time.Millisecond))
	lat, never := tr.Result(3)
	if tr.Seen() != 3 {
		t.Errorf("seen %d pairs, want 3", tr.Seen())
	}
	if len(lat) != 3 || never != 3 {
		t.Fatalf("latencies %v, never %d; want 3 seen and 3 never (message 2 for both, 0 for agent 1)", lat, never)
	}
	for _, d := range lat {
		if d != 20*time.Millisecond && d != 50*time.Millisecond {
			t.Errorf("latency %v, want 20ms or 50ms", d)
		}
	}
}

func TestTrackerIgnoresUnsentAndOutOfRange(t *testing.T) {
	tr := New(1, 2, 1)
	tr.Observer(0)([]byte(New(1, 10, 1).Text(9)), time.Now()) // beyond this tracker's messages
	if lat, never := tr.Result(2); len(lat) != 0 || never != 0 {
		t.Errorf("nothing sent: latencies %v, never %d", lat, never)
	}
}
