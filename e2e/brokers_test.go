package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestExternalBrokers runs a second Pulse with --brokers against the first
// one's Kafka port: it starts no broker of its own and processes what it
// ingests through that cluster. Its settings come from a YAML --config
// file and the environment, to check the precedence flag > env > file.
func TestExternalBrokers(t *testing.T) {
	first := newInstance(t)
	a := first.start(t)

	cfg := filepath.Join(t.TempDir(), "pulse.yaml")
	// The file says 3 partitions and a wrong broker; the environment fixes
	// the broker, a flag overrides nothing here.
	if err := os.WriteFile(cfg, []byte("partitions: 3\nbrokers: 127.0.0.1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PULSE_BROKERS", a.kafka)
	second := newInstance(t, "--config", cfg)
	second.kafka = "" // unused with --brokers
	b := second.start(t)
	if _, err := os.Stat(filepath.Join(second.dataDir, "kafka")); !os.IsNotExist(err) {
		t.Errorf("pulse with --brokers created an embedded broker data dir (err %v)", err)
	}

	base := time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)
	rs := generate(5, "xb", 6, 2, base, 2*time.Minute, 5*time.Second, 500*time.Millisecond)
	end := base.Add(2 * time.Minute)
	rs = append(rs, sentinel("xb", end.Add(time.Minute)))
	if code, ir, raw := b.post(ndjson(rs), "application/x-ndjson"); code != 200 || ir.Accepted != len(rs) {
		t.Fatalf("ingest: %d %s", code, raw)
	}
	want := oracle(rs[:len(rs)-1])
	compare(t, b.waitResults("to="+end.Format(time.RFC3339), len(want)), want)
	b.stop()
	a.stop()
}
