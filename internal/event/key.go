package event

import (
	"errors"
	"fmt"
	"strings"
)

// A group key is the values of an output's group-by fields, in order. It
// is encoded as one string (the engine's group id, the changelog and
// result-topic record keys, the group_key column of the result store):
// the fields' text joined by KeySep, with the bytes KeySep and KeyEscape
// inside a field written as KeyEscape followed by the byte. The encoding
// is unambiguous, so two different keys never share a stored row, and a
// field may hold any byte. A key whose fields contain neither byte is
// encoded exactly as Pulse wrote keys before escaping existed, so state
// and stored rows of earlier versions stay valid.
const (
	KeySep    = 0x1f // between two fields
	KeyEscape = 0x1e // before a KeySep or KeyEscape that is part of a field
)

// AppendKeyString appends one field's text s, escaped. Callers append
// KeySep between fields.
func AppendKeyString(dst []byte, s string) []byte {
	for {
		i := strings.IndexAny(s, "\x1e\x1f")
		if i < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, KeyEscape, s[i])
		s = s[i+1:]
	}
}

// AppendKeyValue appends v as one escaped field of a group key: its
// AppendKeyText form. Numbers and booleans need no escaping.
func AppendKeyValue(dst []byte, v Value) []byte {
	if v.Kind == String {
		return AppendKeyString(dst, v.Str)
	}
	return v.AppendKeyText(dst)
}

// JoinKey encodes the fields of a group key.
func JoinKey(fields []string) string {
	if len(fields) == 1 && !strings.ContainsAny(fields[0], "\x1e\x1f") {
		return fields[0]
	}
	var b []byte
	for i, f := range fields {
		if i > 0 {
			b = append(b, KeySep)
		}
		b = AppendKeyString(b, f)
	}
	return string(b)
}

// errKeyEscape is a KeyEscape not followed by KeySep or KeyEscape.
var errKeyEscape = errors.New("group key has a dangling escape byte")

// SplitKey decodes a group key of n fields, as JoinKey encodes it.
func SplitKey(s string, n int) ([]string, error) {
	if n == 0 {
		if s != "" {
			return nil, fmt.Errorf("group key %q of an output without group fields", s)
		}
		return nil, nil
	}
	var out []string
	if !strings.Contains(s, "\x1e") {
		out = strings.Split(s, "\x1f")
	} else {
		out = make([]string, 0, n)
		var b []byte
		for i := 0; i < len(s); i++ {
			switch c := s[i]; c {
			case KeyEscape:
				if i+1 == len(s) || (s[i+1] != KeySep && s[i+1] != KeyEscape) {
					return nil, errKeyEscape
				}
				i++
				b = append(b, s[i])
			case KeySep:
				out = append(out, string(b))
				b = b[:0]
			default:
				b = append(b, c)
			}
		}
		out = append(out, string(b))
	}
	if len(out) != n {
		return nil, fmt.Errorf("group key has %d fields, want %d", len(out), n)
	}
	return out, nil
}

// SplitLegacyKey reads a key of n fields written before escaping
// existed: the fields joined by KeySep, nothing escaped. A key of one
// field is the whole string; one of more fails when it does not split
// into n fields (a field held KeySep: that key is ambiguous).
func SplitLegacyKey(s string, n int) ([]string, bool) {
	switch n {
	case 0:
		return nil, s == ""
	case 1:
		return []string{s}, true
	}
	out := strings.Split(s, "\x1f")
	return out, len(out) == n
}
