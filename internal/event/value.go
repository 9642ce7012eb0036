package event

import (
	"math"
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

// AppendText appends v as text: numbers in Go's shortest 'g' form (so
// 1e+06 for a million), booleans as true/false, null as the empty string.
// count_distinct hashes this form, and sketches in stored state depend on
// it: it must not change. Group keys use AppendKeyText; what users read
// uses AppendJSON or AppendNumber.
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

// AppendKeyText appends v as the text of one group-key field: numbers as
// AppendNumber writes them (1000000, not 1e+06), strings as they are,
// booleans as true/false, null as the empty string. Join the fields of a
// key with AppendKeyField or JoinKey.
func (v Value) AppendKeyText(dst []byte) []byte {
	switch v.Kind {
	case Number:
		return AppendNumber(dst, v.Num)
	case String:
		return append(dst, v.Str...)
	case Bool:
		return strconv.AppendBool(dst, v.B)
	}
	return dst
}

// AppendNumber appends f in the shortest decimal form that reads back as
// the same float64, without an exponent for whole numbers below 1e21 (a
// count of 1404214 is written 1404214, not 1.404214e+06) and, like
// encoding/json and JavaScript, with one only below 1e-6 or from 1e21 on.
// NaN and infinities are written NaN, +Inf and -Inf: callers writing
// JSON must handle them first (AppendJSON writes null).
func AppendNumber(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.AppendFloat(dst, f, 'g', -1, 64)
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		n := len(dst)
		dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
		// 1e-07 becomes 1e-7, as encoding/json writes it.
		if m := len(dst); m-n >= 4 && dst[m-4] == 'e' && dst[m-3] == '-' && dst[m-2] == '0' {
			dst[m-2] = dst[m-1]
			dst = dst[:m-1]
		}
		return dst
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// AppendJSON appends v as a JSON value. A number that JSON cannot hold
// (NaN, an infinity) is written as null.
func (v Value) AppendJSON(dst []byte) []byte {
	switch v.Kind {
	case Number:
		if math.IsNaN(v.Num) || math.IsInf(v.Num, 0) {
			return append(dst, "null"...)
		}
		return AppendNumber(dst, v.Num)
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
