package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Logger writes at most one line per cause and interval.
type Logger struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu     sync.Mutex
	causes map[string]*cause
}

type cause struct {
	last       time.Time
	suppressed int
}

// New returns a Logger writing to log at most one line per cause every
// interval (default 10 s).
func New(log *slog.Logger, every time.Duration) *Logger {
	if every <= 0 {
		every = 10 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	return &Logger{log: log, every: every, now: time.Now, causes: map[string]*cause{}}
}

// Warn logs msg at warning level unless a line of the same cause was
// written less than the interval ago; the next line written says how many
// were held back (suppressed=N).
func (l *Logger) Warn(cause, msg string, args ...any) { l.Log(slog.LevelWarn, cause, msg, args...) }

// Error is Warn at error level.
func (l *Logger) Error(cause, msg string, args ...any) { l.Log(slog.LevelError, cause, msg, args...) }

// Log is Warn at the given level. It reports whether the line was written.
func (l *Logger) Log(level slog.Level, key, msg string, args ...any) bool {
	now := l.now()
	l.mu.Lock()
	c := l.causes[key]
	if c == nil {
		c = &cause{}
		l.causes[key] = c
	} else if now.Sub(c.last) < l.every {
		c.suppressed++
		l.mu.Unlock()
		return false
	}
	held := c.suppressed
	c.last, c.suppressed = now, 0
	l.mu.Unlock()
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	l.log.Log(context.Background(), level, msg, args...)
	return true
}

// Resolved forgets cause, so that the next line of it is written at once:
// call it when the fault is over (and log the recovery yourself).
func (l *Logger) Resolved(key string) {
	l.mu.Lock()
	delete(l.causes, key)
	l.mu.Unlock()
}
