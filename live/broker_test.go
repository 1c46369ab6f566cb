package live

import "testing"

func TestPublishWakesEverySubscriberWithoutBlocking(t *testing.T) {
	b := NewBroker()
	a, c := b.Subscribe(), b.Subscribe()
	for range 100 { // nobody reads: Publish must not block, wake-ups coalesce
		b.Publish()
	}
	for _, s := range []*Subscription{a, c} {
		select {
		case <-s.C:
		default:
			t.Fatal("a subscriber was not woken")
		}
		select {
		case <-s.C:
			t.Fatal("wake-ups did not coalesce")
		default:
		}
	}
	a.Close()
	a.Close() // twice is fine
	if n := b.Subscribers(); n != 1 {
		t.Errorf("%d subscribers after one closed, want 1", n)
	}
}
