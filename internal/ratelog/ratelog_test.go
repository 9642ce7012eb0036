package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestOneLinePerCauseAndInterval(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Minute)
	now := time.Unix(0, 0)
	l.now = func() time.Time { return now }
	for i := 0; i < 5; i++ {
		l.Warn("disk", "disk full")
	}
	l.Warn("broker", "broker down")
	now = now.Add(time.Minute)
	l.Warn("disk", "disk full")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), buf.String())
	}
	if strings.Contains(lines[0], "suppressed") || !strings.Contains(lines[2], "suppressed=4") {
		t.Fatalf("want the third line to carry suppressed=4:\n%s", buf.String())
	}
	l.Resolved("disk")
	if !l.Log(slog.LevelInfo, "disk", "again") {
		t.Fatal("a resolved cause must log at once")
	}
}
