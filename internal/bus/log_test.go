package bus

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestLoggerWarnsOnly passes a client's warnings and errors to Pulse's
// log, marked as the Kafka client's, and drops its info and debug lines.
func TestLoggerWarnsOnly(t *testing.T) {
	var buf bytes.Buffer
	opt := Logger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	cl, err := kgo.NewClient(opt, kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	l := cl.OptValue(kgo.WithLogger).(kgo.Logger)
	if lv := l.Level(); lv != kgo.LogLevelWarn {
		t.Errorf("level %v, want warn", lv)
	}
	l.Log(kgo.LogLevelInfo, "joined group")
	l.Log(kgo.LogLevelWarn, "unable to open connection", "broker", "seed_0")
	out := buf.String()
	if strings.Contains(out, "joined group") || !strings.Contains(out, "unable to open connection") || !strings.Contains(out, `component="kafka client"`) {
		t.Errorf("log:\n%s\nwant the warning only, with component=\"kafka client\"", out)
	}
}
