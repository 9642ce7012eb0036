package serve

import (
	"runtime"
	"testing"
	"weak"

	"github.com/pulsehq/pulse/internal/stream"
)

// TestFramesDoNotChain: the newest frame caches its delta from the one
// before, but must not keep it (and, through it, every earlier frame)
// reachable: a live client watching a refreshed output would otherwise
// hold every frame since it connected.
func TestFramesDoNotChain(t *testing.T) {
	first := newFrame(stream.Live{Watermark: 1}, nil)
	old := weak.Make(first)
	prev := first
	for i := range 3 {
		f := newFrame(stream.Live{Watermark: int64(i + 2)}, nil)
		f.deltaFrom(prev)
		if f.deltaFrom(prev).results != nil {
			t.Fatal("frames without rows differ")
		}
		prev = f
	}
	first = nil
	runtime.GC()
	if old.Value() != nil {
		t.Fatal("the first frame is still reachable from the newest")
	}
	runtime.KeepAlive(prev)
	runtime.KeepAlive(first)
}
