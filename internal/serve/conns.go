package serve

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// ReserveConns is how many connections beyond Config.MaxConns are still
// accepted so that health checks and scrapes answer while the server is
// full: on them /healthz, /readyz and /metrics are served and anything
// else gets 503 with Retry-After; each such connection serves one request.
const ReserveConns = 16

// limitListener caps the connections open at once. Past max+reserve it
// closes a new connection at once, so that a flood of clients costs a
// file descriptor for a moment only, never a growing number of them.
type limitListener struct {
	net.Listener
	max    int64
	active atomic.Int64
	// refused is called for each connection closed at accept.
	refused func()
}

func newLimitListener(ln net.Listener, max int, refused func()) *limitListener {
	return &limitListener{Listener: ln, max: int64(max), refused: refused}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		n := l.active.Add(1)
		if n > l.max+ReserveConns {
			l.active.Add(-1)
			c.Close()
			if l.refused != nil {
				l.refused()
			}
			continue
		}
		return &limitConn{Conn: c, l: l, overflow: n > l.max}, nil
	}
}

// open is the number of connections open now.
func (l *limitListener) open() int64 { return l.active.Load() }

// limitConn gives its slot back when it closes.
type limitConn struct {
	net.Conn
	l        *limitListener
	overflow bool
	once     sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.active.Add(-1) })
	return err
}

type overflowKey struct{}

// connContext marks the requests of a connection accepted beyond the cap.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitConn); ok && lc.overflow {
		return context.WithValue(ctx, overflowKey{}, true)
	}
	return ctx
}

// onOverflowConn reports whether r came on a connection beyond the cap.
func onOverflowConn(r *http.Request) bool {
	v, _ := r.Context().Value(overflowKey{}).(bool)
	return v
}
