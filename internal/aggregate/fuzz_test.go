package aggregate

import (
	"math/rand/v2"
	"testing"
)

// FuzzDecode decodes arbitrary bytes as the state of every function: it
// must never panic, and whatever decodes must encode, decode again to the
// same result, and take further Add and Merge.
func FuzzDecode(f *testing.F) {
	fs := allFuncs(f)
	r := rand.New(rand.NewPCG(13, 14))
	for _, tf := range fs {
		for _, size := range []int{0, 1, 5, 300} {
			f.Add(feed(tf.f, randomInputs(r, size, 100)).AppendBinary(nil))
		}
	}
	f.Add([]byte{})
	f.Add([]byte{encVersion})
	f.Add([]byte{encVersion, byte(tagSketch), 0x05, 0xff, 0xff, 0xff, 0xff, 0x0f})
	extra := randomInputs(r, 50, 100)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, tf := range fs {
			s := tf.f.New()
			if s.Decode(data) != nil {
				continue
			}
			want, wantOK := s.Result()
			again := tf.f.New()
			if err := again.Decode(s.AppendBinary(nil)); err != nil {
				t.Fatalf("%s: re-decoding: %v", tf.label, err)
			}
			if got, ok := again.Result(); ok != wantOK || !sameValue(got, want) {
				t.Fatalf("%s: re-decoded %+v %v, decoded %+v %v", tf.label, got, ok, want, wantOK)
			}
			for _, x := range extra {
				s.Add(x.v, x.ts)
			}
			fresh := tf.f.New()
			fresh.Merge(s)
			s.Merge(again)
			s.Result()
			fresh.Result()
		}
	})
}
