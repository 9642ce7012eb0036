package sink

import (
	"context"
	"errors"
	"testing"
)

func TestClaimFences(t *testing.T) { eachStore(t, testClaimFences) }

// testClaimFences has two writers of one database take a partition from
// each other: the one whose claim was taken cannot commit any more, and
// nothing of its batch is written.
func testClaimFences(t *testing.T, a testStore) {
	ctx := context.Background()
	b := a.reopen(t)
	tp, other := TopicPartition{"city.sensor_1m", 0}, TopicPartition{"city.sensor_1m", 1}
	idA, err := a.Instance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if idB, err := b.Instance(ctx); err != nil || idB != idA || len(idA) != 16 {
		t.Fatalf("instances %q and %q (%v); want one 16-digit id for one database", idA, idB, err)
	}
	commitAs := func(s testStore, epoch, next int64) error {
		ap := s.Appender(ctx)
		for _, w := range writes("city", result("sensor_1m", "S-1", t0, float64(next))) {
			if err := Apply(ap, w.Pipeline, w.Schema, &w.Result); err != nil {
				t.Fatal(err)
			}
		}
		ap.SetOffset(tp, next)
		ap.Fence(tp, epoch)
		return ap.Commit()
	}
	offs, epochs, err := a.Claim(ctx, []TopicPartition{tp, other})
	if err != nil || len(offs) != 0 || epochs[tp] != 1 || epochs[other] != 1 {
		t.Fatalf("first claim: offsets %v epochs %v (%v); want none and epoch 1", offs, epochs, err)
	}
	if err := commitAs(a, 1, 10); err != nil {
		t.Fatalf("commit of the claim's writer: %v", err)
	}
	offs, epochs, err = b.Claim(ctx, []TopicPartition{tp})
	if err != nil || offs[tp] != 10 || epochs[tp] != 2 {
		t.Fatalf("second claim: offsets %v epochs %v (%v); want offset 10, epoch 2", offs, epochs, err)
	}
	if err := commitAs(a, 1, 20); !errors.Is(err, ErrFenced) {
		t.Fatalf("commit after the claim was taken: %v; want ErrFenced", err)
	}
	got := query(t, a, Query{Pipeline: "city", Outputs: outs("sensor_1m")})
	if len(got) != 1 || got[0].Values[0].Num != 1 || got[0].Values[1].Num != 10 {
		t.Fatalf("rows after the fenced batch: %s; want the first batch's only", fmtRows(got))
	}
	if err := commitAs(b, 2, 30); err != nil {
		t.Fatalf("commit of the new writer: %v", err)
	}
	// A partition claimed but never committed has no offset to resume from.
	if stored, err := a.Offsets(ctx); err != nil || len(stored) != 1 || stored[tp] != 30 {
		t.Fatalf("Offsets = %v (%v); want %s at 30 only", stored, err, tp.Topic)
	}
}
