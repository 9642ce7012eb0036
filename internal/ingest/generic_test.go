package ingest

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pulsehq/pulse/internal/pipeline"
)

func TestGenericValidate(t *testing.T) {
	src := pipeline.Source{KeyField: "user", TimeField: "at", TimeFormat: "auto"}
	ms := pipeline.Source{KeyField: "user", TimeField: "at", TimeFormat: "epoch_ms"}
	rfc := pipeline.Source{KeyField: "user", TimeField: "at", TimeFormat: "rfc3339"}
	for _, c := range []struct {
		name, event string
		src         pipeline.Source
		key, err    string
	}{
		{"string key, rfc3339", `{"user":"u1","at":"2026-01-02T03:04:05Z"}`, src, "u1", ""},
		{"number key, epoch ms", `{"user":42,"at":1767225600000}`, src, "42", ""},
		{"epoch ms as string", `{"user":"u","at":"1767225600000"}`, ms, "u", ""},
		{"missing key", `{"at":1}`, src, "", "missing key field user"},
		{"object key", `{"user":{},"at":1}`, src, "", "key field user must be a string or number"},
		{"empty key", `{"user":"","at":1}`, src, "", "key field user is empty"},
		{"missing time", `{"user":"u"}`, src, "", "missing event-time field at"},
		{"bad time", `{"user":"u","at":"yesterday"}`, src, "", `"yesterday" is not a time: use RFC 3339`},
		{"number for rfc3339", `{"user":"u","at":1}`, rfc, "", "the pipeline expects an RFC 3339 time"},
		{"far future", `{"user":"u","at":"2999-01-01T00:00:00Z"}`, src, "", "ahead of the clock"},
		{"rfc3339 for epoch_ms", `{"user":"u","at":"2026-01-02T03:04:05Z"}`, ms, "", "not a time in format epoch_ms"},
		{"not an object", `[1]`, src, "", "must be a JSON object"},
		{"key not UTF-8", "{\"user\":\"u\xff\",\"at\":1}", src, "", "not valid UTF-8 (byte 0xff at offset 10)"},
		{"other field not UTF-8", "{\"user\":\"u\",\"at\":1,\"page\":\"/h\xe9me\"}", src, "", "not valid UTF-8"},
		{"escaped non-ASCII is fine", `{"user":"Z\u00fcrich","at":1767225600000}`, src, "Zürich", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := genericParser{maxFuture: time.Hour}
			key, err := g.validate([]byte(c.event), &c.src)
			if c.err == "" {
				if err != nil || string(key) != c.key {
					t.Fatalf("key %q, err %v; want key %q", key, err, c.key)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err %v, want it to say %q", err, c.err)
			}
		})
	}
}

// FuzzGenericValidate checks that validation of arbitrary bytes never
// panics and that an accepted event has a key.
func FuzzGenericValidate(f *testing.F) {
	for _, s := range []string{`{"user":"u1","at":"2026-01-02T03:04:05Z"}`, `{"user":42,"at":1}`, `{"at":1}`, `[`, `{"user":"","at":"1"}`} {
		f.Add([]byte(s))
	}
	src := pipeline.Source{KeyField: "user", TimeField: "at", TimeFormat: "auto"}
	f.Fuzz(func(t *testing.T, data []byte) {
		var g genericParser
		key, err := g.validate(data, &src)
		if err == nil && key == nil {
			t.Fatalf("accepted %q without a key", data)
		}
		if err == nil && !utf8.Valid(data) {
			t.Fatalf("accepted %q, which is not UTF-8", data)
		}
	})
}
