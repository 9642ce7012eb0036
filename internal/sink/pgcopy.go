package sink

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// PostgreSQL's binary COPY format, written straight from results: no
// per-value interface boxing on the client, no number parsing on the
// server. Each row is its column count, then per column its length (-1:
// NULL) and bytes. It stores what cellArg binds for the same value (the
// store contract suite runs both ways).

// copyHeader starts a binary COPY stream: the signature, no flags, no
// header extension.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// copyTrailer ends it.
var copyTrailer = []byte{0xff, 0xff}

// pgEpochMicros is 2000-01-01T00:00:00Z, PostgreSQL's epoch, in µs since
// the Unix epoch.
const pgEpochMicros = 946684800 * 1e6

// appendCopyRow appends r as a binary COPY row of every column of s.
func appendCopyRow(dst []byte, s *stream.Schema, r *stream.Result) ([]byte, error) {
	d := pgDialect{}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s.Columns)))
	for i := range s.Group() {
		k := ""
		if i < len(r.Key) {
			k = r.Key[i]
		}
		dst = appendCopyBytes(dst, d.text(k))
	}
	dst = appendCopyTime(dst, r.Start)
	if s.Windowed() {
		dst = appendCopyTime(dst, r.End)
	}
	for i, c := range s.Values() {
		var v event.Value
		if i < len(r.Values) {
			v = r.Values[i]
		}
		var err error
		if dst, err = appendCopyCell(dst, c.Type, v); err != nil {
			return nil, fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	return dst, nil
}

func appendCopyBytes(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

func appendCopyNull(dst []byte) []byte { return binary.BigEndian.AppendUint32(dst, math.MaxUint32) }

func appendCopy8(dst []byte, x uint64) []byte {
	dst = binary.BigEndian.AppendUint32(dst, 8)
	return binary.BigEndian.AppendUint64(dst, x)
}

func appendCopyTime(dst []byte, ms int64) []byte {
	return appendCopy8(dst, uint64(ms*1000-pgEpochMicros))
}

// appendCopyCell appends v as a column of type t, NULL where cellArg
// binds NULL.
func appendCopyCell(dst []byte, t pipeline.ColumnType, v event.Value) ([]byte, error) {
	// The common cells without boxing them.
	if v.Kind == event.Number && !math.IsNaN(v.Num) && !math.IsInf(v.Num, 0) {
		switch t {
		case pipeline.TypeFloat64:
			return appendCopy8(dst, math.Float64bits(v.Num)), nil
		case pipeline.TypeInt64:
			if math.Abs(v.Num) < 1<<63 {
				return appendCopy8(dst, uint64(int64(math.Trunc(v.Num)))), nil
			}
		}
	}
	a := cellArg(pgDialect{}, t, v)
	if a == nil {
		return appendCopyNull(dst), nil
	}
	switch x := a.(type) {
	case string:
		if t == pipeline.TypeDecimal {
			return appendCopyNumeric(dst, x)
		}
		if t == stream.TypeAny {
			// jsonb: a version byte, then the JSON text.
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(x)+1))
			return append(append(dst, 1), x...), nil
		}
		return appendCopyBytes(dst, x), nil
	case int64:
		return appendCopy8(dst, uint64(x)), nil
	case float64:
		return appendCopy8(dst, math.Float64bits(x)), nil
	case bool:
		dst = binary.BigEndian.AppendUint32(dst, 1)
		if x {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case time.Time:
		return appendCopyTime(dst, x.UnixMilli()), nil
	}
	return nil, fmt.Errorf("no binary COPY encoding for %T", a)
}

// appendCopyNumeric appends the decimal text s as a binary numeric.
func appendCopyNumeric(dst []byte, s string) ([]byte, error) {
	var n pgtype.Numeric
	if err := n.Scan(s); err != nil {
		return nil, fmt.Errorf("decimal %q: %w", s, err)
	}
	n0 := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	plan := pgtype.NumericCodec{}.PlanEncode(nil, pgtype.NumericOID, pgtype.BinaryFormatCode, n)
	if plan == nil {
		return nil, fmt.Errorf("decimal %q: no binary encoding", s)
	}
	out, err := plan.Encode(n, dst)
	if err != nil {
		return nil, fmt.Errorf("decimal %q: %w", s, err)
	}
	binary.BigEndian.PutUint32(out[n0:], uint32(len(out)-n0-4))
	return out, nil
}
