package event

import (
	"testing"
	"time"
)

var rfc3339Seeds = []string{
	"2026-11-22T07:04:24.123Z",
	"2026-11-22T07:04:24Z",
	"2026-11-22T07:04:24.1Z",
	"2026-11-22T07:04:24.123456789Z",
	"2026-11-22T07:04:24.1234567891Z",
	"1969-12-31T23:59:59.999Z",
	"0000-01-01T00:00:00Z",
	"0000-03-01T00:00:00Z",
	"9999-12-31T23:59:59.999999999Z",
	"2024-02-29T12:00:00Z",
	"2023-02-29T12:00:00Z",
	"2100-02-29T12:00:00Z",
	"2000-02-29T12:00:00Z",
	"2026-04-31T00:00:00Z",
	"2026-13-01T00:00:00Z",
	"2026-11-22T24:00:00Z",
	"2026-11-22T23:60:00Z",
	"2026-11-22T23:59:60Z",
	"2026-11-22T07:04:24.Z",
	"2026-11-22T07:04:24,5Z",
	"2026-11-22T07:04:24.123+02:00",
	"2026-11-22t07:04:24Z",
	"2026-11-22T07:04:24z",
	"+026-11-22T07:04:24Z",
	"2026-1-22T07:04:24.00Z",
}

// TestParseRFC3339Millis: the fast path agrees with time.Parse on
// accepted and rejected times alike.
func TestParseRFC3339Millis(t *testing.T) {
	for _, s := range rfc3339Seeds {
		checkRFC3339(t, s)
	}
	if _, ok := fastRFC3339UTC([]byte("2026-11-22T07:04:24.123Z")); !ok {
		t.Error("the usual layout misses the fast path")
	}
}

func checkRFC3339(t *testing.T, s string) {
	t.Helper()
	want, err := time.Parse(time.RFC3339Nano, s)
	got, ok := parseRFC3339Millis([]byte(s))
	if ok != (err == nil) || ok && got != want.UnixMilli() {
		t.Errorf("%q: got %d, %v; time.Parse: %d, %v", s, got, ok, want.UnixMilli(), err)
	}
	if fast, ok := fastRFC3339UTC([]byte(s)); ok && (err != nil || fast != want.UnixMilli()) {
		t.Errorf("%q: fast path %d; time.Parse: %d, %v", s, fast, want.UnixMilli(), err)
	}
}

// FuzzParseRFC3339Millis compares the fast path with time.Parse.
func FuzzParseRFC3339Millis(f *testing.F) {
	for _, s := range rfc3339Seeds {
		f.Add(s)
	}
	f.Fuzz(checkRFC3339)
}

func BenchmarkParseRFC3339Millis(b *testing.B) {
	in := []byte("2026-11-22T07:04:24.123Z")
	for b.Loop() {
		if _, ok := parseRFC3339Millis(in); !ok {
			b.Fatal("rejected")
		}
	}
}
