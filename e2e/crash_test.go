package e2e

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// TestCrashExact sends 1,000,000 generated readings (fixed seed) in chunks
// and kill -9s Pulse at a random moment after each chunk while the
// pipeline is still working through it, restarting it every time. The
// final results must equal a batch computation over every reading, row
// for row: nothing lost, nothing counted twice.
func TestCrashExact(t *testing.T) {
	total, kills := 1_000_000, 6
	if testing.Short() {
		total = 100_000
	}
	const sensors, zones = 2000, 50
	rng := rand.New(rand.NewPCG(42, 42))
	base := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	// Event time advances 2 ms per reading (about 33 minutes over 1 M),
	// with up to 400 ms of disorder, within the pipeline's 1 s.
	want := map[string]*aggregate{}
	var maxTS time.Time
	chunk := total / kills
	in := newInstance(t)
	in.bin = pulseFastBin
	p := in.start(t)
	for k := 0; k < kills; k++ {
		var body []byte
		for i := k * chunk; i < (k+1)*chunk && i < total; i++ {
			r := reading{
				sensor: "cr-" + strconv.Itoa(i%sensors), zone: "cr-zone-" + strconv.Itoa(i%sensors%zones), kind: "air",
				ts:      base.Add(time.Duration(2*i)*time.Millisecond - time.Duration(rng.IntN(400))*time.Millisecond),
				metrics: map[string]float64{"pm25": float64(rng.IntN(5000)) / 10},
			}
			if r.ts.After(maxTS) {
				maxTS = r.ts
			}
			addOracle(want, r)
			body = append(body, r.json()...)
			body = append(body, '\n')
			if len(body) > 1<<20 {
				p.mustPost(body)
				body = body[:0]
			}
		}
		if len(body) > 0 {
			p.mustPost(body)
		}
		// Kill at a random moment while the pipeline works on the chunk.
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		p.kill()
		p = in.start(t)
	}
	end := maxTS.Truncate(time.Minute).Add(time.Minute)
	p.mustPost([]byte(sentinel("cr", end.Add(time.Minute)).json()))
	rows := p.waitResults("to="+end.Format(time.RFC3339)+"&limit=1000000", len(want))
	compare(t, rows, want)
	p.stop()
}

func (p *proc) mustPost(body []byte) {
	p.t.Helper()
	code, ir, raw := p.post(body, "application/x-ndjson")
	if code != 200 || ir.Rejected != 0 {
		if len(raw) > 500 {
			raw = raw[:500]
		}
		p.t.Fatalf("ingest: %d %s", code, raw)
	}
}
