package event

import (
	"fmt"
	"time"
)

// DefaultMaxFuture is how far ahead of the clock an event time may be
// unless configured otherwise (pulse run --max-future). Sender clocks are
// often off by seconds, sometimes by a minute or two; an event further
// ahead than this is far more likely a wrong clock or a wrong unit than
// an event, and is rejected with the reason. An accepted event ahead of
// the clock is counted in its window, but advances the watermark only up
// to the clock (docs/pipelines.md, event time).
const DefaultMaxFuture = 5 * time.Minute

// CheckFuture returns an error when event time ts (epoch ms) is more than
// max ahead of now(); max 0 accepts every time.
func CheckFuture(ts int64, max time.Duration, now func() time.Time) error {
	if max <= 0 {
		return nil
	}
	if limit := now().Add(max).UnixMilli(); ts > limit {
		return fmt.Errorf("%s is more than %s ahead of the clock: check the sender's clock (the limit is pulse run --max-future)",
			time.UnixMilli(ts).UTC().Format(time.RFC3339Nano), max)
	}
	return nil
}
