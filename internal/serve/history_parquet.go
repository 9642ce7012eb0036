package serve

import (
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/pulsehq/pulse/internal/archive"
)

// Key-value metadata of a history answer in Parquet: the stream, and the
// next token when the answer is cut (as the Pulse-Next trailer).
const (
	metaHistoryStream = "pulse.stream"
	metaHistoryNext   = "pulse.next"
)

// historyGroupRows is the most rows of a row group of a Parquet answer:
// a row group is what the writer holds before it goes out.
const historyGroupRows = 16_384

// parquetAnswer writes a history answer as one Parquet file: the columns
// asked for, in their order, each with its type, encoding and nullability
// in the archive; zstd. parquet-go writes the footer last, so the file
// streams out a row group at a time.
type parquetAnswer struct {
	schema *parquet.Schema
	w      *parquet.GenericWriter[any]
	// rows[:n] wait to be written, a batch at a time: the writer's cost
	// is mostly per call. Their bytes are copies in arena (the reader's
	// rows are only valid during its callback), which the writer copies
	// in turn.
	rows  []parquet.Row
	n     int
	arena []byte
}

// historyWriteBatch is how many rows a Parquet answer writes at once.
const historyWriteBatch = 512

// orderedGroup is a group node whose fields keep an order of their own
// (parquet.Group sorts them by name).
type orderedGroup struct {
	parquet.Group // the same fields, for the node's other methods
	fields        []parquet.Field
}

func (g orderedGroup) Fields() []parquet.Field { return g.fields }

func newParquetAnswer(archived *parquet.Schema, cols []string) (*parquetAnswer, error) {
	all := parquet.Group{}
	fields := make([]parquet.Field, len(cols))
	for i, c := range cols {
		leaf, ok := archived.Lookup(c)
		if !ok {
			return nil, fmt.Errorf("the archive schema has no column %s", c)
		}
		all[c] = leaf.Node
		fields[i] = parquet.Group{c: leaf.Node}.Fields()[0] // the node under its name
	}
	pa := &parquetAnswer{schema: parquet.NewSchema("events", orderedGroup{Group: all, fields: fields}), rows: make([]parquet.Row, historyWriteBatch)}
	for i := range pa.rows {
		pa.rows[i] = make(parquet.Row, len(cols))
	}
	return pa, nil
}

func (pa *parquetAnswer) start(w io.Writer, stream string) {
	codec, _ := archive.Codec("zstd")
	pa.w = parquet.NewGenericWriter[any](w, pa.schema, parquet.Compression(codec), parquet.MaxRowsPerRowGroup(historyGroupRows),
		parquet.CreatedBy("pulse", "", ""), parquet.KeyValueMetadata(metaHistoryStream, stream))
}

// row writes the columns idx (leaf columns of row's schema) of row.
func (pa *parquetAnswer) row(row parquet.Row, idx []int) error {
	out := pa.rows[pa.n]
	for i, c := range idx {
		v := cell(row, c)
		if !v.IsNull() {
			switch v.Kind() {
			case parquet.ByteArray:
				at := len(pa.arena)
				pa.arena = append(pa.arena, v.ByteArray()...)
				v = parquet.ByteArrayValue(pa.arena[at:len(pa.arena):len(pa.arena)])
			case parquet.FixedLenByteArray:
				at := len(pa.arena)
				pa.arena = append(pa.arena, v.ByteArray()...)
				v = parquet.FixedLenByteArrayValue(pa.arena[at:len(pa.arena):len(pa.arena)])
			}
		}
		out[i] = v.Level(v.RepetitionLevel(), v.DefinitionLevel(), i)
	}
	if pa.n++; pa.n == len(pa.rows) {
		return pa.flush()
	}
	return nil
}

// flush writes the rows waiting.
func (pa *parquetAnswer) flush() error {
	_, err := pa.w.WriteRows(pa.rows[:pa.n])
	pa.n, pa.arena = 0, pa.arena[:0]
	if err != nil {
		return fmt.Errorf("write the parquet answer: %w", err)
	}
	return nil
}

// end writes the last row group and the footer, with the next token in
// the metadata when there is one.
func (pa *parquetAnswer) end(next string) error {
	if err := pa.flush(); err != nil {
		return err
	}
	if next != "" {
		pa.w.SetKeyValueMetadata(metaHistoryNext, next)
	}
	if err := pa.w.Close(); err != nil {
		return fmt.Errorf("write the parquet answer: %w", err)
	}
	return nil
}
