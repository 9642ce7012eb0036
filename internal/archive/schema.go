package archive

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/event"
	pstream "github.com/pulsehq/pulse/internal/stream"
)

// Column names every archive file has.
const (
	ColEventTime = "event_time" // TIMESTAMP(MILLIS, UTC)
	ColKey       = "key"        // the Kafka record's key, null if it has none
	ColPartition = "kafka_partition"
	ColOffset    = "kafka_offset"
	ColEventJSON = "event_json" // the record's value, for streams without a schema
	ColKind      = "kind"       // a result's record kind: insert, update or delete
)

// SchemaResult is the Source.Schema of an output's results.
const SchemaResult = "result"

// Source says how to read a stream's records: its topic, and the schema
// ("city"), the event-time field of schema-less JSON, or the typed
// schema of an output's results (ResultSource).
type Source struct {
	Stream     string
	Topic      string
	Schema     string // "city", SchemaResult, or "" for JSON kept as text
	TimeField  string
	TimeFormat string
	// Result is the schema of the output's results, for SchemaResult.
	Result *pstream.Schema
}

// codec turns records into Parquet rows of one schema. It reuses its
// buffers: one codec per goroutine.
type codec interface {
	schema() *parquet.Schema
	// parse reads rec and returns its event time, or an error saying why
	// the record cannot be archived.
	parse(rec *kgo.Record) (int64, error)
	// newWriter returns a writer of this codec's rows into out.
	newWriter(out io.Writer, opts ...parquet.WriterOption) rowWriter
}

// rowWriter writes one file's rows: add buffers the row of the record
// its codec parsed last, flush writes the rows buffered.
type rowWriter interface {
	add()
	flush() (int, error)
	SetKeyValueMetadata(key, value string)
	Close() error
}

// newCodec returns the codec of src.
func newCodec(src Source) (codec, error) {
	switch src.Schema {
	case "city":
		return newCityCodec(), nil
	case SchemaResult:
		return newResultCodec(src)
	case "":
		if src.TimeField == "" {
			return nil, fmt.Errorf("stream %s: no event-time field", src.Stream)
		}
		return newJSONCodec(src), nil
	}
	return nil, fmt.Errorf("stream %s: unknown schema %q", src.Stream, src.Schema)
}

func dict(n parquet.Node) parquet.Node  { return parquet.Encoded(n, &parquet.RLEDictionary) }
func delta(n parquet.Node) parquet.Node { return parquet.Encoded(n, &parquet.DeltaBinaryPacked) }

// common are the columns of every archive schema.
func common() parquet.Group {
	return parquet.Group{
		ColEventTime: delta(parquet.TimestampAdjusted(parquet.Millisecond, true)),
		ColKey:       parquet.Optional(dict(parquet.String())),
		ColPartition: parquet.Int(32),
		ColOffset:    delta(parquet.Int(64)),
	}
}

// columns maps names to leaf column indexes of s.
func columns(s *parquet.Schema, names ...string) []int {
	idx := make([]int, len(names))
	for i, n := range names {
		leaf, ok := s.Lookup(n)
		if !ok {
			panic("archive schema lacks column " + n)
		}
		idx[i] = leaf.ColumnIndex
	}
	return idx
}

// commonValues sets the common columns' values of rec in row.
func commonValues(row parquet.Row, idx []int, rec *kgo.Record, ms int64) {
	row[idx[0]] = parquet.Int64Value(ms).Level(0, 0, idx[0])
	if rec.Key == nil {
		row[idx[1]] = parquet.NullValue().Level(0, 0, idx[1])
	} else {
		row[idx[1]] = parquet.ByteArrayValue(rec.Key).Level(0, 1, idx[1])
	}
	row[idx[2]] = parquet.Int32Value(rec.Partition).Level(0, 0, idx[2])
	row[idx[3]] = parquet.Int64Value(rec.Offset).Level(0, 0, idx[3])
}

// cityRow is one city reading as archived. Metrics are nullable; the
// pointers point into the writer's arena, not to one allocation each.
type cityRow struct {
	EventTime int64    `parquet:"event_time,timestamp(millisecond),delta"`
	Key       string   `parquet:"key,optional,dict"` // "" (no key, or an empty one) is null
	Partition int32    `parquet:"kafka_partition"`
	Offset    int64    `parquet:"kafka_offset,delta"`
	SensorID  string   `parquet:"sensor_id,dict"`
	Zone      string   `parquet:"zone,dict"`
	Kind      string   `parquet:"kind,dict"`
	SpeedKmh  *float64 `parquet:"speed_kmh,optional"`
	Vehicles  *int64   `parquet:"vehicle_count,optional"`
	Occupancy *float64 `parquet:"occupancy,optional"`
	PM25      *float64 `parquet:"pm25,optional"`
	PM10      *float64 `parquet:"pm10,optional"`
	NO2       *float64 `parquet:"no2,optional"`
	O3        *float64 `parquet:"o3,optional"`
	TempC     *float64 `parquet:"temp_c,optional"`
	Humidity  *float64 `parquet:"humidity,optional"`
	WindMs    *float64 `parquet:"wind_ms,optional"`
	RainMm    *float64 `parquet:"rain_mm,optional"`
}

// float returns the field of metric m (not VehicleCount).
func (r *cityRow) float(m event.Metric) **float64 {
	switch m {
	case event.SpeedKmh:
		return &r.SpeedKmh
	case event.Occupancy:
		return &r.Occupancy
	case event.PM25:
		return &r.PM25
	case event.PM10:
		return &r.PM10
	case event.NO2:
		return &r.NO2
	case event.O3:
		return &r.O3
	case event.TempC:
		return &r.TempC
	case event.Humidity:
		return &r.Humidity
	case event.WindMs:
		return &r.WindMs
	case event.RainMm:
		return &r.RainMm
	}
	panic("no float column for metric " + m.String())
}

var citySchema = parquet.SchemaOf(cityRow{})

// cityCodec writes city readings as typed columns: sensor_id, zone, kind
// and one nullable column per metric (vehicle_count INT64, the others
// DOUBLE). Fields a reading carries besides these are not archived. Its
// rows go through parquet-go's typed writer (no parquet.Value per
// column): the fastest path.
type cityCodec struct {
	p   event.CityParser
	r   event.Reading
	rec *kgo.Record
}

func newCityCodec() *cityCodec { return &cityCodec{} }

func (c *cityCodec) schema() *parquet.Schema { return citySchema }

func (c *cityCodec) parse(rec *kgo.Record) (int64, error) {
	c.rec = rec
	if err := c.p.Parse(rec.Value, &c.r); err != nil {
		return 0, err
	}
	return c.r.TS, nil
}

func (c *cityCodec) newWriter(out io.Writer, opts ...parquet.WriterOption) rowWriter {
	return &cityWriter{GenericWriter: parquet.NewGenericWriter[cityRow](out, opts...), c: c}
}

type cityWriter struct {
	*parquet.GenericWriter[cityRow]
	c       *cityCodec
	pending []cityRow
	floats  []float64
	ints    []int64
}

func (w *cityWriter) add() {
	r, rec := &w.c.r, w.c.rec
	w.pending = append(w.pending, cityRow{EventTime: r.TS, Key: unsafe.String(unsafe.SliceData(rec.Key), len(rec.Key)), Partition: rec.Partition, Offset: rec.Offset,
		SensorID: r.SensorID, Zone: r.Zone, Kind: r.Kind.String()})
	row := &w.pending[len(w.pending)-1]
	for m := event.Metric(0); m < event.NumMetrics; m++ {
		if !r.HasMetric(m) {
			continue
		}
		// A pointer into the arena stays valid when the arena grows: the
		// old array lives on while rows point into it.
		if m == event.VehicleCount {
			w.ints = append(w.ints, int64(r.Values[m]))
			row.Vehicles = &w.ints[len(w.ints)-1]
		} else {
			w.floats = append(w.floats, r.Values[m])
			*row.float(m) = &w.floats[len(w.floats)-1]
		}
	}
}

func (w *cityWriter) flush() (int, error) {
	n, err := w.Write(w.pending)
	clear(w.pending) // drop references to the records
	w.pending, w.floats, w.ints = w.pending[:0], w.floats[:0], w.ints[:0]
	return n, err
}

// jsonCodec keeps a schema-less stream's events as their JSON text, with
// the event time read from the source's time field.
type jsonCodec struct {
	s      *parquet.Schema
	src    Source
	common []int
	text   int
	p      fastjson.Parser
	rec    *kgo.Record
	ms     int64
	ncols  int
}

func jsonSchema() *parquet.Schema {
	g := common()
	g[ColEventJSON] = parquet.String()
	return parquet.NewSchema("events", g)
}

func newJSONCodec(src Source) *jsonCodec {
	c := &jsonCodec{s: jsonSchema(), src: src}
	c.common = columns(c.s, ColEventTime, ColKey, ColPartition, ColOffset)
	c.text = columns(c.s, ColEventJSON)[0]
	c.ncols = len(c.s.Columns())
	return c
}

func (c *jsonCodec) schema() *parquet.Schema { return c.s }

var errNotObject = errors.New("not a JSON object")

func (c *jsonCodec) parse(rec *kgo.Record) (int64, error) {
	c.rec = rec
	if err := event.CheckUTF8(rec.Value); err != nil {
		return 0, err
	}
	v, err := c.p.ParseBytes(rec.Value)
	if err != nil {
		return 0, fmt.Errorf("malformed JSON: %w", err)
	}
	if v.Type() != fastjson.TypeObject {
		return 0, errNotObject
	}
	tv := v.Get(c.src.TimeField)
	if tv == nil {
		return 0, fmt.Errorf("missing event-time field %s", c.src.TimeField)
	}
	if c.ms, err = event.ReadTime(tv, c.src.TimeFormat); err != nil {
		return 0, fmt.Errorf("field %s: %w", c.src.TimeField, err)
	}
	return c.ms, nil
}

func (c *jsonCodec) newWriter(out io.Writer, opts ...parquet.WriterOption) rowWriter {
	return &valueWriter{Writer: parquet.NewWriter(out, append([]parquet.WriterOption{c.s}, opts...)...), c: c}
}

// valueWriter writes rows of parquet.Values, for schemas known only at
// run time.
type valueWriter struct {
	*parquet.Writer
	c *jsonCodec
	rowBuffer
}

// rowBuffer holds the rows of a writer of parquet.Values not written
// yet, ncols values each, in one slice.
type rowBuffer struct {
	pending []parquet.Value
	rows    []parquet.Row
}

// next returns the values of a new row of n columns.
func (b *rowBuffer) next(n int) []parquet.Value {
	b.pending = slices.Grow(b.pending, n)
	b.pending = b.pending[:len(b.pending)+n]
	return b.pending[len(b.pending)-n:]
}

// write writes the rows buffered (of n columns) with w and empties the
// buffer, dropping its references to the records.
func (b *rowBuffer) write(w parquet.RowWriter, n int) (int, error) {
	b.rows = b.rows[:0]
	for i := 0; i < len(b.pending)/n; i++ {
		b.rows = append(b.rows, b.pending[i*n:(i+1)*n:(i+1)*n])
	}
	written, err := w.WriteRows(b.rows)
	clear(b.pending)
	clear(b.rows)
	b.pending = b.pending[:0]
	return written, err
}

func (w *valueWriter) add() {
	c := w.c
	row := w.next(c.ncols)
	commonValues(row, c.common, c.rec, c.ms)
	row[c.text] = parquet.ByteArrayValue(c.rec.Value).Level(0, 0, c.text)
}

func (w *valueWriter) flush() (int, error) {
	return w.write(w.Writer, w.c.ncols)
}
