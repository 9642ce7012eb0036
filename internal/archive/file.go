package archive

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// Key-value metadata every archive file carries.
const (
	MetaStream    = "pulse.stream"
	MetaTopic     = "pulse.topic"
	MetaPartition = "pulse.partition"
	// MetaOffsets is "FROM-TO": the file holds every archived event of
	// this partition and hour with an offset in [FROM, TO).
	MetaOffsets = "pulse.offsets"
	MetaRows    = "pulse.rows"
)

// Codec returns the compression codec named name: zstd or snappy.
func Codec(name string) (compress.Codec, error) {
	switch name {
	case "zstd", "":
		return &zstd.Codec{Level: zstd.SpeedFastest}, nil
	case "snappy":
		return &snappy.Codec{}, nil
	}
	return nil, fmt.Errorf("compression %q: use zstd or snappy", name)
}

// fileWriter writes one archive file into a temporary file of the spool.
// Rows are buffered per poll and written in one call.
type fileWriter struct {
	part Part
	tmp  string
	f    *os.File
	w    rowWriter
	rows int
}

type writerOptions struct {
	codec        compress.Codec
	rowGroupRows int
}

func newFileWriter(spool string, part Part, c codec, o writerOptions) (*fileWriter, error) {
	f, err := os.CreateTemp(spool, fmt.Sprintf("%s-p%03d-*%s%s", part.Stream, part.Partition, Ext, tmpExt))
	if err != nil {
		return nil, fmt.Errorf("create archive file in %s: %w", spool, err)
	}
	w := c.newWriter(f,
		parquet.Compression(o.codec),
		parquet.MaxRowsPerRowGroup(int64(o.rowGroupRows)),
		parquet.PageBufferSize(128<<10),
		parquet.WriteBufferSize(256<<10),
		parquet.CreatedBy("pulse", "", ""),
	)
	return &fileWriter{part: part, tmp: f.Name(), f: f, w: w}, nil
}

// flush writes the buffered rows.
func (fw *fileWriter) flush() error {
	n, err := fw.w.flush()
	fw.rows += n
	if err != nil {
		return fmt.Errorf("write %s: %w", fw.tmp, err)
	}
	return nil
}

// finish writes the footer with the offsets and syncs the file; the
// returned size is the file's.
func (fw *fileWriter) finish(topic string) (int64, error) {
	if err := fw.flush(); err != nil {
		return 0, err
	}
	fw.w.SetKeyValueMetadata(MetaStream, fw.part.Stream)
	fw.w.SetKeyValueMetadata(MetaTopic, topic)
	fw.w.SetKeyValueMetadata(MetaPartition, strconv.Itoa(int(fw.part.Partition)))
	fw.w.SetKeyValueMetadata(MetaOffsets, fmt.Sprintf("%d-%d", fw.part.From, fw.part.To))
	fw.w.SetKeyValueMetadata(MetaRows, strconv.Itoa(fw.rows))
	if err := fw.w.Close(); err != nil {
		return 0, fmt.Errorf("write %s: %w", fw.tmp, err)
	}
	if err := fw.f.Sync(); err != nil {
		return 0, fmt.Errorf("sync %s: %w", fw.tmp, err)
	}
	st, err := fw.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", fw.tmp, err)
	}
	if err := fw.f.Close(); err != nil {
		return 0, fmt.Errorf("close %s: %w", fw.tmp, err)
	}
	fw.f = nil
	return st.Size(), nil
}

// discard removes the temporary file.
func (fw *fileWriter) discard() {
	if fw.f != nil {
		fw.f.Close()
		fw.f = nil
	}
	os.Remove(fw.tmp)
}

// hourKey is a map key for an hour.
func hourKey(t time.Time) int64 { return t.Unix() }
