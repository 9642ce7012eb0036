package sink

import (
	"encoding/base64"
	"testing"
)

func TestCursor(t *testing.T) {
	for _, c := range []Cursor{
		{},
		{Output: "zone_1m", Start: t0, Key: "zone-01"},
		{Output: "pair", Start: -5, Key: "a\x1e\x1fb\x1fc,d"},
		{Output: "bytes", Start: 1, Key: "\xff\x00"},
	} {
		tok := c.String()
		back, err := ParseCursor(tok)
		if err != nil || back != c {
			t.Errorf("ParseCursor(%q) = %+v, %v; want %+v", tok, back, err, c)
		}
	}
	for _, bad := range []string{"", "!!", base64.RawURLEncoding.EncodeToString([]byte{2, 0, 0}),
		base64.RawURLEncoding.EncodeToString([]byte{1, 9, 'a'}), base64.RawURLEncoding.EncodeToString([]byte{1, 1, 'a'})} {
		if c, err := ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q) = %+v, want an error", bad, c)
		}
	}
}

// FuzzParseCursor checks that any token either fails or decodes to a
// cursor whose token decodes to it again.
func FuzzParseCursor(f *testing.F) {
	f.Add(Cursor{Output: "o", Start: t0, Key: "k\x1fk"}.String())
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := ParseCursor(tok)
		if err != nil {
			return
		}
		again, err := ParseCursor(c.String())
		if err != nil || again != c {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", tok, c, c.String(), again, err)
		}
	})
}
