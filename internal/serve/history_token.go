package serve

// The continuation tokens of history answers.

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"

	"github.com/pulsehq/pulse/internal/archive"
)

// historyCursor is where a history page ends and the next begins: in the
// files at the row file, or in the tail.
//
// In the files, ends are the archived ends (by partition; To 0: no file)
// of the first page's listing: files published since are skipped, their
// events are in the tail, which starts there (archive.TailStart). A
// cursor of a version 1 token has no ends: they come from the current
// listing. In the tail, next and rest are where each partition goes on
// (archive.TailPosition, archive.RollRest).
type historyCursor struct {
	tail bool
	file archive.Position
	ends []archive.ArchivedEnd
	next []int64
	rest []archive.RollRest
}

// Token versions: 1 is a file position (tokens of earlier releases, still
// read), 2 a cursor with the archived ends or the tail's offsets.
const (
	positionVersion = 1
	cursorVersion   = 2
)

// cursorToken encodes c as an opaque token: base64url of the version
// byte, then 0 (files), the file name's length and bytes, the row, the
// number of partitions and each one's archived end (from, to, last hour);
// or 1 (tail), the number of partitions and each one's next offset and
// roll rest (to, min time).
func cursorToken(c historyCursor) string {
	b := []byte{cursorVersion, 0}
	if c.tail {
		b[1] = 1
		b = binary.AppendUvarint(b, uint64(len(c.next)))
		for p, o := range c.next {
			var r archive.RollRest
			if p < len(c.rest) {
				r = c.rest[p]
			}
			b = binary.AppendUvarint(b, uint64(o))
			b = binary.AppendUvarint(b, uint64(r.To))
			b = binary.AppendVarint(b, r.MinTime)
		}
	} else {
		b = binary.AppendUvarint(b, uint64(len(c.file.Name)))
		b = append(b, c.file.Name...)
		b = binary.AppendVarint(b, c.file.Row)
		b = binary.AppendUvarint(b, uint64(len(c.ends)))
		for _, e := range c.ends {
			b = binary.AppendUvarint(b, uint64(e.From))
			b = binary.AppendUvarint(b, uint64(e.To))
			b = binary.AppendVarint(b, e.LastHour)
		}
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

var errPosition = errors.New("not a token this API returned: pass the next value of the previous page unchanged")

// tokenReader reads a token's numbers; a malformed one sets bad.
type tokenReader struct {
	b   []byte
	bad bool
}

func (r *tokenReader) uint() int64 {
	v, k := binary.Uvarint(r.b)
	if k <= 0 || v > math.MaxInt64 {
		r.bad = true
		return 0
	}
	r.b = r.b[k:]
	return int64(v)
}

func (r *tokenReader) int() int64 {
	v, k := binary.Varint(r.b)
	if k <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[k:]
	return v
}

// count reads a number of partitions, each of at least three bytes.
func (r *tokenReader) count() int {
	n := r.uint()
	if n > int64(len(r.b)/3) {
		r.bad = true
		return 0
	}
	return int(n)
}

func parseCursor(tok string) (historyCursor, error) {
	var c historyCursor
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) < 2 || len(tok) > 8<<10 {
		return c, errPosition
	}
	version := raw[0]
	r := &tokenReader{b: raw[1:]}
	if version == cursorVersion {
		c.tail = r.b[0] == 1
		if r.b[0] > 1 {
			return c, errPosition
		}
		r.b = r.b[1:]
	} else if version != positionVersion {
		return c, errPosition
	}
	if c.tail {
		n := r.count()
		c.next, c.rest = make([]int64, n), make([]archive.RollRest, n)
		for p := 0; p < n && !r.bad; p++ {
			c.next[p] = r.uint()
			c.rest[p] = archive.RollRest{To: r.uint(), MinTime: r.int()}
		}
	} else {
		n := r.uint()
		if r.bad || n > int64(len(r.b)) {
			return c, errPosition
		}
		c.file.Name = string(r.b[:n])
		r.b = r.b[n:]
		if c.file.Row = r.int(); c.file.Row < 0 {
			return c, errPosition
		}
		if version == cursorVersion {
			n := r.count()
			c.ends = make([]archive.ArchivedEnd, n)
			for p := 0; p < n && !r.bad; p++ {
				c.ends[p] = archive.ArchivedEnd{From: r.uint(), To: r.uint(), LastHour: r.int()}
			}
		}
	}
	if r.bad || len(r.b) != 0 {
		return c, errPosition
	}
	return c, nil
}
