package aggregate

import (
	"math/rand/v2"
	"testing"

	"github.com/pulsehq/pulse/internal/event"
)

// BenchmarkAdd adds numbers (count() gets nulls, as from the engine) to
// one state of each function.
func BenchmarkAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(15, 16))
	vs := make([]event.Value, 1024)
	for i := range vs {
		vs[i] = n(r.NormFloat64() * 100)
	}
	for _, tf := range allFuncs(b) {
		b.Run(tf.label, func(b *testing.B) {
			s := tf.f.New()
			b.ReportAllocs()
			i := 0
			if !tf.f.NeedsField() {
				for b.Loop() {
					s.Add(event.Value{}, int64(i))
					i++
				}
				return
			}
			for b.Loop() {
				s.Add(vs[i&1023], int64(i))
				i++
			}
		})
	}
}
