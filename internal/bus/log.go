package bus

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"
)

// Logger returns the option that makes a franz-go client log through log
// (kslog), at warning level and above: what a client warns of (a broker
// that refuses connections, a group session lost, a record it gave up
// on) reaches Pulse's log, its routine info and debug lines do not.
func Logger(log *slog.Logger) kgo.Opt {
	return kgo.WithLogger(kslog.New(slog.New(minLevel{log.Handler(), slog.LevelWarn}).With("component", "kafka client")))
}

// minLevel drops the records of h below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
