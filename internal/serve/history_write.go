package serve

// The encoding of a history answer: JSON, CSV, or Parquet (history_parquet.go).

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"

	"github.com/pulsehq/pulse/internal/archive"
	"github.com/pulsehq/pulse/internal/event"
)

// cell returns the value of leaf column col in row (null if absent). A
// row of every column holds column i at i; a projected one is scanned.
func cell(row parquet.Row, col int) parquet.Value {
	if col >= 0 && col < len(row) && row[col].Column() == col {
		return row[col]
	}
	for _, v := range row {
		if v.Column() == col {
			return v
		}
	}
	return parquet.NullValue()
}

// appendValue appends v as text: with tc, v is a time (ms) that tc writes
// in RFC 3339 with milliseconds; strings as they are (quoted when quote),
// numbers in their shortest form; nulls append nothing.
func appendValue(buf []byte, v parquet.Value, tc *timeText, quote bool) []byte {
	switch {
	case v.IsNull():
		return buf
	case tc != nil:
		// RFC 3339 has nothing JSON escapes: quoted as it is.
		if quote {
			buf = append(buf, '"')
		}
		buf = tc.append(buf, v.Int64())
		if quote {
			buf = append(buf, '"')
		}
		return buf
	}
	switch v.Kind() {
	case parquet.ByteArray, parquet.FixedLenByteArray:
		if quote {
			b := v.ByteArray()
			return event.AppendJSONString(buf, unsafe.String(unsafe.SliceData(b), len(b))) // read only, during the call
		}
		return append(buf, v.ByteArray()...)
	case parquet.Int32:
		return strconv.AppendInt(buf, int64(v.Int32()), 10)
	case parquet.Int64:
		return strconv.AppendInt(buf, v.Int64(), 10)
	case parquet.Double:
		return strconv.AppendFloat(buf, v.Double(), 'g', -1, 64)
	case parquet.Float:
		return strconv.AppendFloat(buf, float64(v.Float()), 'g', -1, 32)
	case parquet.Boolean:
		return strconv.AppendBool(buf, v.Boolean())
	}
	return append(buf, v.String()...)
}

// timeText writes times in UTC as RFC 3339 with milliseconds
// (2026-03-01T12:00:00.250Z), formatting each second once: the events of
// an answer come in time order within a file.
type timeText struct {
	sec    int64
	prefix []byte // sec up to its seconds, "2026-03-01T12:00:00"
}

func (tc *timeText) append(buf []byte, ms int64) []byte {
	sec := ms / 1000
	if ms%1000 < 0 {
		sec--
	}
	if tc.prefix == nil || sec != tc.sec {
		tc.sec, tc.prefix = sec, time.Unix(sec, 0).UTC().AppendFormat(tc.prefix[:0], "2006-01-02T15:04:05")
	}
	m := ms - sec*1000
	return append(append(buf, tc.prefix...), '.', byte('0'+m/100), byte('0'+m/10%10), byte('0'+m%10), 'Z')
}

// historyFlushRows is how many rows are written between flushes.
const historyFlushRows = 1000

// historyWriter streams one answer, JSON, CSV or Parquet.
type historyWriter struct {
	w       http.ResponseWriter
	q       historyQuery
	csv     *csv.Writer
	pq      *parquetAnswer
	buf     []byte
	rec     []string
	keys    [][]byte    // per column, its JSON member name and colon
	times   []*timeText // per column, its writer if it is a time
	rows    int
	started bool
}

func newHistoryWriter(w http.ResponseWriter, q historyQuery) (*historyWriter, error) {
	hw := &historyWriter{w: w, q: q}
	if q.format == "parquet" {
		var err error
		if hw.pq, err = newParquetAnswer(q.schema, q.cols); err != nil {
			return nil, err
		}
	}
	return hw, nil
}

func (hw *historyWriter) start() {
	hw.started = true
	hw.times = make([]*timeText, len(hw.q.cols))
	for i, c := range hw.q.cols {
		if c == archive.ColEventTime {
			hw.times[i] = &timeText{}
		}
	}
	switch hw.q.format {
	case "csv":
		hw.w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		hw.w.Header().Set("Trailer", "Pulse-Next")
		hw.csv = csv.NewWriter(hw.w)
		hw.csv.Write(hw.q.cols)
	case "parquet":
		hw.w.Header().Set("Content-Type", "application/vnd.apache.parquet")
		hw.w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.parquet"`, hw.q.read.Stream))
		hw.w.Header().Set("Trailer", "Pulse-Next")
		hw.pq.start(hw.w, hw.q.read.Stream)
	default:
		hw.w.Header().Set("Content-Type", "application/json")
		hw.buf = append(hw.buf, `{"stream":`...)
		hw.buf = event.AppendJSONString(hw.buf, hw.q.read.Stream)
		hw.buf = append(hw.buf, `,"events":[`...)
		for _, c := range hw.q.cols {
			hw.keys = append(hw.keys, append(event.AppendJSONString(nil, c), ':'))
		}
	}
}

func (hw *historyWriter) row(row parquet.Row, idx []int) error {
	if !hw.started {
		hw.start()
	}
	switch {
	case hw.pq != nil:
		if err := hw.pq.row(row, idx); err != nil {
			return err
		}
	case hw.csv != nil:
		hw.rec = hw.rec[:0]
		for i, c := range idx {
			v := cell(row, c)
			t := string(appendValue(hw.buf[:0], v, hw.times[i], false))
			if v.Kind() == parquet.ByteArray && !v.IsNull() {
				t = csvText(t)
			}
			hw.rec = append(hw.rec, t)
		}
		hw.csv.Write(hw.rec)
	default:
		if hw.rows > 0 {
			hw.buf = append(hw.buf, ',')
		}
		hw.buf = append(hw.buf, '{')
		first := true
		for i, c := range idx {
			v := cell(row, c)
			if v.IsNull() {
				continue
			}
			if !first {
				hw.buf = append(hw.buf, ',')
			}
			first = false
			hw.buf = append(hw.buf, hw.keys[i]...)
			hw.buf = appendValue(hw.buf, v, hw.times[i], true)
		}
		hw.buf = append(hw.buf, '}')
	}
	hw.rows++
	if hw.rows%historyFlushRows == 0 {
		return hw.flush()
	}
	return nil
}

func (hw *historyWriter) flush() error {
	if hw.csv != nil {
		hw.csv.Flush()
		if err := hw.csv.Error(); err != nil {
			return err
		}
	} else if hw.pq == nil && len(hw.buf) > 0 {
		if _, err := hw.w.Write(hw.buf); err != nil {
			return err
		}
		hw.buf = hw.buf[:0]
	}
	if f, ok := hw.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// end writes the answer's end with the next token ("" when complete).
func (hw *historyWriter) end(next string) error {
	if !hw.started {
		hw.start()
	}
	switch {
	case hw.pq != nil:
		if next != "" {
			hw.w.Header().Set("Pulse-Next", next)
		}
		return hw.pq.end(next)
	case hw.csv != nil:
		hw.csv.Flush()
		if next != "" {
			hw.w.Header().Set("Pulse-Next", next)
		}
		return hw.csv.Error()
	}
	hw.buf = append(hw.buf, ']')
	if next != "" {
		hw.buf = append(hw.buf, `,"next":`...)
		hw.buf = event.AppendJSONString(hw.buf, next)
	}
	hw.buf = append(hw.buf, "}\n"...)
	_, err := hw.w.Write(hw.buf)
	return err
}
