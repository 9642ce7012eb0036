package sink

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// Cursor is a position in the order of Query's results (output, window
// start, stored group key): a page ends at its last row's Cursor, and the
// next page is asked for with Query.After.
type Cursor struct {
	Output string
	Start  int64
	Key    string // the group_key column, as event.JoinKey encodes it
}

// cursorVersion leads every token, so that its layout can change.
const cursorVersion = 1

// String encodes c as an opaque token for URLs: base64url of a version
// byte, the output's length and bytes, the window start and the key's
// bytes (any bytes: a key is kept exactly).
func (c Cursor) String() string {
	b := []byte{cursorVersion}
	b = binary.AppendUvarint(b, uint64(len(c.Output)))
	b = append(b, c.Output...)
	b = binary.AppendVarint(b, c.Start)
	b = append(b, c.Key...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// errCursor is any token that String did not make.
var errCursor = errors.New("not a cursor this API returned: pass the next value of the previous page unchanged")

// maxCursor bounds a token's length, far above any real one.
const maxCursor = 8 << 10

// ParseCursor decodes a token made by Cursor.String.
func ParseCursor(token string) (Cursor, error) {
	if len(token) > maxCursor {
		return Cursor{}, errCursor
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) == 0 || b[0] != cursorVersion {
		return Cursor{}, errCursor
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return Cursor{}, errCursor
	}
	c := Cursor{Output: string(b[k : k+int(n)])}
	b = b[k+int(n):]
	start, k := binary.Varint(b)
	if k <= 0 {
		return Cursor{}, errCursor
	}
	c.Start, c.Key = start, string(b[k:])
	return c, nil
}
