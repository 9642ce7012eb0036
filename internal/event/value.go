package event

import (
	"strconv"
	"unicode/utf8"
)

// ValueKind is the type of a Value.
type ValueKind uint8

// The kinds of values an event field can hold.
const (
	Null ValueKind = iota
	Number
	String
	Bool
)

// Value is one field of a generic event: a number, a string, a boolean or
// null (absent). It is a small value type so that decoded events need no
// per-field allocation on the hot path.
type Value struct {
	Kind ValueKind
	Num  float64
	Str  string
	B    bool
}

// NumberValue returns a number value.
func NumberValue(f float64) Value { return Value{Kind: Number, Num: f} }

// StringValue returns a string value.
func StringValue(s string) Value { return Value{Kind: String, Str: s} }

// BoolValue returns a boolean value.
func BoolValue(b bool) Value { return Value{Kind: Bool, B: b} }

// IsNull reports whether v is absent.
func (v Value) IsNull() bool { return v.Kind == Null }

// AppendText appends v as text: numbers in their shortest form, booleans as
// true/false, null as the empty string. Group keys and distinct counts use
// this form.
func (v Value) AppendText(dst []byte) []byte {
	switch v.Kind {
	case Number:
		return strconv.AppendFloat(dst, v.Num, 'g', -1, 64)
	case String:
		return append(dst, v.Str...)
	case Bool:
		return strconv.AppendBool(dst, v.B)
	}
	return dst
}

// AppendJSON appends v as a JSON value.
func (v Value) AppendJSON(dst []byte) []byte {
	switch v.Kind {
	case Number:
		return strconv.AppendFloat(dst, v.Num, 'g', -1, 64)
	case String:
		return AppendJSONString(dst, v.Str)
	case Bool:
		return strconv.AppendBool(dst, v.B)
	}
	return append(dst, "null"...)
}

// AppendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD.
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, "\ufffd"...)
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}
