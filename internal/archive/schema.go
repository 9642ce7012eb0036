package archive

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fastjson"

	"github.com/pulsehq/pulse/internal/event"
)

// Column names every archive file has.
const (
	ColEventTime = "event_time" // TIMESTAMP(MILLIS, UTC)
	ColKey       = "key"        // the Kafka record's key, null if it has none
	ColPartition = "kafka_partition"
	ColOffset    = "kafka_offset"
	ColEventJSON = "event_json" // the record's value, for streams without a schema
)

// Source says how to read a stream's records: its topic, and the schema
// ("city") or the event-time field of schema-less JSON.
type Source struct {
	Stream     string
	Topic      string
	Schema     string // "city", or "" for JSON kept as text
	TimeField  string
	TimeFormat string
}

// codec turns records into Parquet rows of one schema. It reuses its
// buffers: one codec per goroutine.
type codec interface {
	schema() *parquet.Schema
	// row returns the record's row (valid until the next call) and its
	// event time, or an error saying why the record cannot be archived.
	row(rec *kgo.Record) (parquet.Row, int64, error)
}

// newCodec returns the codec of src.
func newCodec(src Source) (codec, error) {
	switch src.Schema {
	case "city":
		return newCityCodec(), nil
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

// bytesOf views s as bytes without copying: the writer copies values it
// buffers.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

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

// cityCodec writes city readings as typed columns: sensor_id, zone, kind
// and one nullable column per metric (vehicle_count INT64, the others
// DOUBLE). Fields a reading carries besides these are not archived.
type cityCodec struct {
	s      *parquet.Schema
	common []int // event_time, key, partition, offset
	text   []int // sensor_id, zone, kind
	metric [event.NumMetrics]int
	p      event.CityParser
	r      event.Reading
	buf    parquet.Row
}

func citySchema() *parquet.Schema {
	g := common()
	g["sensor_id"] = dict(parquet.String())
	g["zone"] = dict(parquet.String())
	g["kind"] = dict(parquet.String())
	for m := event.Metric(0); m < event.NumMetrics; m++ {
		if m == event.VehicleCount {
			g[m.String()] = parquet.Optional(parquet.Int(64))
		} else {
			g[m.String()] = parquet.Optional(parquet.Leaf(parquet.DoubleType))
		}
	}
	return parquet.NewSchema("city", g)
}

func newCityCodec() *cityCodec {
	c := &cityCodec{s: citySchema()}
	c.common = columns(c.s, ColEventTime, ColKey, ColPartition, ColOffset)
	c.text = columns(c.s, "sensor_id", "zone", "kind")
	for m := event.Metric(0); m < event.NumMetrics; m++ {
		c.metric[m] = columns(c.s, m.String())[0]
	}
	c.buf = make(parquet.Row, len(c.s.Columns()))
	return c
}

func (c *cityCodec) schema() *parquet.Schema { return c.s }

func (c *cityCodec) row(rec *kgo.Record) (parquet.Row, int64, error) {
	if err := c.p.Parse(rec.Value, &c.r); err != nil {
		return nil, 0, err
	}
	r := &c.r
	row := c.buf
	commonValues(row, c.common, rec, r.TS)
	row[c.text[0]] = parquet.ByteArrayValue(bytesOf(r.SensorID)).Level(0, 0, c.text[0])
	row[c.text[1]] = parquet.ByteArrayValue(bytesOf(r.Zone)).Level(0, 0, c.text[1])
	row[c.text[2]] = parquet.ByteArrayValue(bytesOf(r.Kind.String())).Level(0, 0, c.text[2])
	for m := event.Metric(0); m < event.NumMetrics; m++ {
		i := c.metric[m]
		switch {
		case !r.HasMetric(m):
			row[i] = parquet.NullValue().Level(0, 0, i)
		case m == event.VehicleCount:
			row[i] = parquet.Int64Value(int64(r.Values[m])).Level(0, 1, i)
		default:
			row[i] = parquet.DoubleValue(r.Values[m]).Level(0, 1, i)
		}
	}
	return row, r.TS, nil
}

// jsonCodec keeps a schema-less stream's events as their JSON text, with
// the event time read from the source's time field.
type jsonCodec struct {
	s      *parquet.Schema
	src    Source
	common []int
	text   int
	p      fastjson.Parser
	buf    parquet.Row
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
	c.buf = make(parquet.Row, len(c.s.Columns()))
	return c
}

func (c *jsonCodec) schema() *parquet.Schema { return c.s }

var errNotObject = errors.New("not a JSON object")

func (c *jsonCodec) row(rec *kgo.Record) (parquet.Row, int64, error) {
	if err := event.CheckUTF8(rec.Value); err != nil {
		return nil, 0, err
	}
	v, err := c.p.ParseBytes(rec.Value)
	if err != nil {
		return nil, 0, fmt.Errorf("malformed JSON: %w", err)
	}
	if v.Type() != fastjson.TypeObject {
		return nil, 0, errNotObject
	}
	tv := v.Get(c.src.TimeField)
	if tv == nil {
		return nil, 0, fmt.Errorf("missing event-time field %s", c.src.TimeField)
	}
	ms, err := event.ReadTime(tv, c.src.TimeFormat)
	if err != nil {
		return nil, 0, fmt.Errorf("field %s: %w", c.src.TimeField, err)
	}
	row := c.buf
	commonValues(row, c.common, rec, ms)
	row[c.text] = parquet.ByteArrayValue(rec.Value).Level(0, 0, c.text)
	return row, ms, nil
}
