package event

import (
	"slices"
	"testing"
)

func TestKeyEncoding(t *testing.T) {
	for _, tc := range []struct {
		fields []string
		enc    string
	}{
		{nil, ""},
		{[]string{""}, ""},
		{[]string{"zone-01"}, "zone-01"},
		{[]string{"zone-01", "s-7"}, "zone-01\x1fs-7"}, // as written before escaping existed
		{[]string{"a\x1fb"}, "a\x1e\x1fb"},
		{[]string{"a\x1fb", "c"}, "a\x1e\x1fb\x1fc"},
		{[]string{"a", "b\x1fc"}, "a\x1fb\x1e\x1fc"},
		{[]string{"x\x1e", ""}, "x\x1e\x1e\x1f"},
		{[]string{"", ""}, "\x1f"},
		{[]string{"a,b", "c"}, "a,b\x1fc"},
	} {
		enc := JoinKey(tc.fields)
		if enc != tc.enc {
			t.Errorf("JoinKey(%q) = %q, want %q", tc.fields, enc, tc.enc)
		}
		back, err := SplitKey(enc, len(tc.fields))
		if err != nil || !slices.Equal(back, tc.fields) {
			t.Errorf("SplitKey(%q, %d) = %q, %v; want %q", enc, len(tc.fields), back, err, tc.fields)
		}
	}
	// The collision of the old encoding: two keys, one row.
	a, b := JoinKey([]string{"a\x1fb", "c"}), JoinKey([]string{"a", "b\x1fc"})
	if a == b {
		t.Errorf("two different keys encode alike: %q", a)
	}
	for _, bad := range []struct {
		s string
		n int
	}{{"a\x1e", 1}, {"a\x1eb", 1}, {"a\x1fb", 1}, {"a", 2}, {"x", 0}} {
		if got, err := SplitKey(bad.s, bad.n); err == nil {
			t.Errorf("SplitKey(%q, %d) = %q, want an error", bad.s, bad.n, got)
		}
	}
	var v []byte
	v = AppendKeyValue(v, StringValue("a\x1fb"))
	v = append(v, KeySep)
	v = AppendKeyValue(v, NumberValue(2e6))
	if string(v) != JoinKey([]string{"a\x1fb", "2000000"}) {
		t.Errorf("AppendKeyValue wrote %q", v)
	}
	if got, ok := SplitLegacyKey("zone-01\x1fs-7", 2); !ok || !slices.Equal(got, []string{"zone-01", "s-7"}) {
		t.Errorf("SplitLegacyKey = %q, %v", got, ok)
	}
	if _, ok := SplitLegacyKey("a\x1fb\x1fc", 2); ok {
		t.Error("an ambiguous legacy key was split")
	}
	if got, ok := SplitLegacyKey("a\x1fb", 1); !ok || !slices.Equal(got, []string{"a\x1fb"}) {
		t.Errorf("SplitLegacyKey of one field = %q, %v", got, ok)
	}
}

// FuzzSplitKey checks that decoding any string never panics, that a
// decoded key encodes back to the same string (one encoding per key), and
// that every key round-trips.
func FuzzSplitKey(f *testing.F) {
	for _, s := range []string{"", "a", "a\x1fb", "a\x1e\x1fb", "\x1e", "\x1e\x1e\x1f"} {
		f.Add(s, 1)
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		n = n & 7
		fields, err := SplitKey(s, n)
		if err == nil {
			if len(fields) != n {
				t.Fatalf("SplitKey(%q, %d) gave %d fields", s, n, len(fields))
			}
			if enc := JoinKey(fields); enc != s {
				t.Fatalf("SplitKey(%q) = %q encodes back as %q", s, fields, enc)
			}
		}
		// s itself as the fields of a key.
		key := []string{s, s[:len(s)/2]}
		if back, err := SplitKey(JoinKey(key), 2); err != nil || !slices.Equal(back, key) {
			t.Fatalf("%q round-trips as %q, %v", key, back, err)
		}
	})
}
