package stream

import (
	"hash/fnv"
	"testing"
)

func TestPartitionForIsFNV(t *testing.T) {
	for _, k := range []string{"", "S-1", "zone-07", "a\x1fb"} {
		h := fnv.New32a()
		h.Write([]byte(k))
		if got, want := partitionFor([]byte(k), 8), int32(h.Sum32()%8); got != want {
			t.Fatalf("partitionFor(%q) = %d, want %d", k, got, want)
		}
	}
}
