package stream

import (
	"testing"
	"time"
)

// TestPollSize: polls shrink when records are slow to process, so that a
// poll's work stays near pollWork, and grow back when they are fast.
func TestPollSize(t *testing.T) {
	var p pollSize
	if got := p.records(); got != maxPollRecords {
		t.Fatalf("first poll: %d records, want %d", got, maxPollRecords)
	}
	p.took(0, time.Second) // an empty poll says nothing
	if got := p.records(); got != maxPollRecords {
		t.Fatalf("after an empty poll: %d records, want %d", got, maxPollRecords)
	}
	p.took(100, time.Second) // 10 ms a record (a task reading its groups from disk)
	if got, want := p.records(), int(pollWork/(10*time.Millisecond)); got != want {
		t.Errorf("10 ms per record: %d records, want %d", got, want)
	}
	p.took(10, 10*time.Second) // a second a record: the floor
	for range 20 {
		p.took(10, 10*time.Second)
	}
	if got := p.records(); got != minPollRecords {
		t.Errorf("1 s per record: %d records, want the floor %d", got, minPollRecords)
	}
	for range 50 {
		p.took(20000, 20*time.Millisecond) // 1 µs a record
	}
	if got := p.records(); got != maxPollRecords {
		t.Errorf("1 µs per record: %d records, want the cap %d", got, maxPollRecords)
	}
}
