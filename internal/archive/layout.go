package archive

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Ext is the extension of a complete archive file; a file being written
// has tmpExt after it, so that readers globbing *.parquet never see it.
const (
	Ext    = ".parquet"
	tmpExt = ".tmp"
)

// Part names one archive file: the events of one source partition, one
// roll (the offsets [From, To) of that partition) and one hour of event
// time.
type Part struct {
	Stream    string
	Hour      time.Time // UTC, truncated to the hour
	Partition int32
	From, To  int64
}

// ResultPrefix starts the stream name under which an output's results
// are archived: stream=@PIPELINE.OUTPUT. A stream is named after its
// Kafka topic, and no topic name holds an '@', so the two never share a
// folder; and the archiver lists, resumes and names the files of both
// the same way.
const ResultPrefix = "@"

// ResultStream is the archive's name of the results of output of
// pipeline: "@pipeline.output".
func ResultStream(pipeline, output string) string { return ResultPrefix + pipeline + "." + output }

// ResultOf returns the pipeline and output whose results stream (a
// name from ResultStream) holds; ok is false for a stream of raw events.
func ResultOf(stream string) (pipeline, output string, ok bool) {
	rest, ok := strings.CutPrefix(stream, ResultPrefix)
	if !ok {
		return "", "", false
	}
	pipeline, output, ok = strings.Cut(rest, ".")
	return pipeline, output, ok && pipeline != "" && output != ""
}

// HourOf returns the hour (UTC) holding the event time ms.
func HourOf(ms int64) time.Time { return time.UnixMilli(ms).UTC().Truncate(time.Hour) }

// Dir is the Hive-style directory of the part's hour, relative to the
// archive root: stream=S/date=YYYY-MM-DD/hour=HH.
func (p Part) Dir() string {
	return fmt.Sprintf("stream=%s/date=%s/hour=%02d", p.Stream, p.Hour.Format(time.DateOnly), p.Hour.Hour())
}

// Name is the part's path relative to the archive root. The offsets are
// zero-padded so that names sort in offset order.
func (p Part) Name() string {
	return fmt.Sprintf("%s/p%03d-%020d-%020d%s", p.Dir(), p.Partition, p.From, p.To, Ext)
}

// ParsePart parses a name written by Part.Name. Names that are not
// archive parts (other files in the same bucket or folder) give an error.
func ParsePart(name string) (Part, error) {
	var p Part
	dir, file := path.Split(name)
	segs := strings.Split(strings.TrimSuffix(dir, "/"), "/")
	if len(segs) < 3 {
		return p, fmt.Errorf("%s: not stream=S/date=D/hour=H/file", name)
	}
	segs = segs[len(segs)-3:]
	stream, ok1 := strings.CutPrefix(segs[0], "stream=")
	date, ok2 := strings.CutPrefix(segs[1], "date=")
	hour, ok3 := strings.CutPrefix(segs[2], "hour=")
	if !ok1 || !ok2 || !ok3 || stream == "" {
		return p, fmt.Errorf("%s: not stream=S/date=D/hour=H/file", name)
	}
	day, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return p, fmt.Errorf("%s: date: %w", name, err)
	}
	h, err := strconv.Atoi(hour)
	if err != nil || h < 0 || h > 23 || len(hour) != 2 {
		return p, fmt.Errorf("%s: hour %q is not 00 to 23", name, hour)
	}
	base, ok := strings.CutSuffix(file, Ext)
	fields := strings.Split(base, "-")
	if !ok || len(fields) != 3 || !strings.HasPrefix(fields[0], "p") {
		return p, fmt.Errorf("%s: file name is not pNNN-FROM-TO%s", name, Ext)
	}
	part, err1 := strconv.ParseInt(fields[0][1:], 10, 32)
	from, err2 := strconv.ParseInt(fields[1], 10, 64)
	to, err3 := strconv.ParseInt(fields[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || part < 0 || from < 0 || to <= from {
		return p, fmt.Errorf("%s: file name is not pNNN-FROM-TO%s with FROM < TO", name, Ext)
	}
	p = Part{Stream: stream, Hour: day.Add(time.Duration(h) * time.Hour), Partition: int32(part), From: from, To: to}
	return p, nil
}
