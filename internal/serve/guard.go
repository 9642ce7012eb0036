package serve

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// guard wraps the API in the checks every request passes, outermost
// first: deadlines, the connection cap's reserve, the Host check and the
// cross-origin check.
func (s *Server) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.refuse("cross_origin", "refused a cross-origin request", r)
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin " + r.Method +
			" refused: a web page of another origin may not write to Pulse; send it from a server or a command-line client (they send no Origin or Sec-Fetch-Site header)"})
	}))
	h := cop.Handler(next)
	h = s.checkHost(s.hosts, h)
	h = s.overflow(h)
	return s.deadlines(h)
}

// overflow serves only the health endpoints and /metrics on connections
// accepted beyond the cap, one request each, so that probes answer while
// the server is full.
func (s *Server) overflow(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !onOverflowConn(r) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
			next.ServeHTTP(w, r)
			return
		}
		s.refuse("conn_limit", "refused a request: the server holds its maximum of connections", r, "max_conns", s.cfg.MaxConns)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": fmt.Sprintf(
			"Pulse holds its maximum of %d connections (--http-max-conns): retry later, and reuse connections (keep-alive) instead of opening new ones", s.cfg.MaxConns)})
	})
}

// checkHost answers 403 to a Host name that is not allowed, when the
// server listens on loopback or names were allowed explicitly: a page on
// a name the attacker controls that resolves to 127.0.0.1 (DNS
// rebinding) must not reach Pulse. IP literals and localhost are always
// allowed; rebinding needs a name.
func (s *Server) checkHost(p hostPolicy, next http.Handler) http.Handler {
	if !p.enforce {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.allowed(r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		s.refuse("host", "refused a request for an unknown Host", r, "host", r.Host)
		writeJSON(w, http.StatusForbidden, map[string]string{"error": fmt.Sprintf(
			"Host %q is not served: Pulse answers only localhost, IP addresses and the names given with --http-allow-host (protection against DNS rebinding); add this name with --http-allow-host", r.Host)})
	})
}

// hostPolicy is the set of Host names the server answers.
type hostPolicy struct {
	enforce bool
	any     bool
	names   map[string]bool
}

// newHostPolicy enforces the names when ln listens on loopback or allow
// is not empty; "*" in allow allows every name.
func newHostPolicy(ln net.Listener, configured string, allow []string) hostPolicy {
	p := hostPolicy{names: map[string]bool{"localhost": true}}
	if h, _, err := net.SplitHostPort(configured); err == nil && h != "" {
		p.names[normHost(h)] = true
	}
	for _, a := range allow {
		a = strings.TrimSpace(a)
		if a == "*" {
			p.any = true
		}
		if a != "" {
			p.names[normHost(a)] = true
		}
	}
	tcp, _ := ln.Addr().(*net.TCPAddr)
	p.enforce = !p.any && (len(allow) > 0 || (tcp != nil && tcp.IP.IsLoopback()))
	return p
}

func normHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
}

func (p hostPolicy) allowed(hostport string) bool {
	if p.any || hostport == "" {
		return true
	}
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = normHost(h)
	if net.ParseIP(h) != nil || p.names[h] || strings.HasSuffix(h, ".localhost") {
		return true
	}
	return false
}

// refuse counts a refused request by reason and logs it, rate-limited.
func (s *Server) refuse(reason, msg string, r *http.Request, args ...any) {
	s.refused.WithLabelValues(reason).Inc()
	s.warn.Warn("http "+reason, msg, append([]any{"remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path}, args...)...)
}
