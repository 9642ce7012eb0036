package ingest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMemoryLimits(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got := meminfoTotal(write("meminfo", "MemTotal:       24597816 kB\nMemFree:         1234 kB\n")); got != 24597816<<10 {
		t.Errorf("meminfoTotal = %d", got)
	}
	for text, want := range map[string]int64{"max\n": 0, "1073741824\n": 1 << 30, "9223372036854771712\n": 0, "junk": 0} {
		if got := cgroupLimit(write("memory.max", text)); got != want {
			t.Errorf("cgroupLimit(%q) = %d, want %d", text, got, want)
		}
	}
	if got := cgroupLimit(filepath.Join(dir, "absent")); got != 0 {
		t.Errorf("cgroupLimit of a missing file = %d", got)
	}
	if d := DefaultMaxInflight(); d < 32<<20 || d > 128<<20 {
		t.Errorf("DefaultMaxInflight = %d, want within [32 MiB, 128 MiB]", d)
	}
}
