package pipeline

import (
	"testing"
	"time"
)

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30d": 30 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "12h": 12 * time.Hour,
		"90m": 90 * time.Minute, " 1h30m ": 90 * time.Minute, "0d": 0,
	} {
		if got, err := ParseRetention(in); err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "1.5w", "70000d", "30 days"} {
		if got, err := ParseRetention(in); err == nil {
			t.Errorf("ParseRetention(%q) = %v; want an error", in, got)
		}
	}
}

func TestOutputRetention(t *testing.T) {
	p, err := Parse("t.yaml", []byte(minimal+"    retention: 30d\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Outputs[0].Retention; got != 30*24*time.Hour {
		t.Errorf("retention %v, want 720h", got)
	}
	p, err = Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Outputs[0].Retention; got != 0 {
		t.Errorf("retention without the key: %v, want 0 (forever)", got)
	}
}
