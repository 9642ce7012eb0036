package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/archive"
	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/lifecycle"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/serve"
	"github.com/pulsehq/pulse/internal/telemetry"
)

// archiveFlags are the flags of the Parquet archive (docs/archive.md).
type archiveFlags struct {
	target, dir, compression string
	rollAge                  time.Duration
	rollRows, rowGroup       int
	workers                  int
	rollBytes                byteSize
}

func (a *archiveFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&a.target, "archive", "local", "where raw events (and the results of outputs with archive: true) are archived as Parquet: local (the folder --archive-dir), s3://bucket/prefix (any S3-compatible store: endpoint from AWS_ENDPOINT_URL, keys from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or off")
	fs.StringVar(&a.dir, "archive-dir", "", "folder of the local Parquet archive (default: --data-dir/archive)")
	fs.StringVar(&a.compression, "archive-compression", "zstd", "compression of the archive's Parquet files: zstd or snappy")
	fs.DurationVar(&a.rollAge, "archive-roll-age", archive.DefaultRoll.Age, "longest an archived event waits before its file is published (the files of a partition are completed together at this age, or sooner at --archive-roll-rows or --archive-roll-bytes)")
	fs.IntVar(&a.rollRows, "archive-roll-rows", archive.DefaultRoll.Rows, "events of one topic partition after which its archive files are completed")
	a.rollBytes = byteSize(archive.DefaultRoll.Bytes)
	fs.Var(&a.rollBytes, "archive-roll-bytes", "bytes of events (as received) of one topic partition after which its archive files are completed")
	fs.IntVar(&a.rowGroup, "archive-row-group", 122_880, "most rows of a Parquet row group in the archive")
	fs.IntVar(&a.workers, "archive-workers", 1, "goroutines encoding archive files, each for a share of the partitions (more use more cores)")
}

// archiveComponent returns the archiver of the plans' streams and of the
// results of their outputs with archive: true, started
// once the topics exist (after), and the history API's access to its
// files; nothing with --archive off.
func archiveComponent(f runFlags, plans []*pipeline.Plan, kafka []kgo.Opt, m *telemetry.Metrics, log *slog.Logger,
	hold func() bool, after func(func(context.Context) error) func(context.Context) error) ([]lifecycle.Component, *serve.History, error) {
	a := f.archive
	var store archive.Store
	var err error
	switch {
	case a.target == "off":
		return nil, nil, nil
	case a.target == "local" || a.target == "":
		dir := a.dir
		if dir == "" {
			dir = filepath.Join(f.dataDir, "archive")
		}
		store, err = archive.NewLocal(dir)
	case strings.HasPrefix(a.target, "s3://"):
		store, err = archive.NewS3(archive.S3FromEnv(a.target, filepath.Join(f.dataDir, "archive-spool")))
	default:
		return nil, nil, fmt.Errorf("--archive %q: use local, s3://bucket/prefix or off", a.target)
	}
	if err != nil {
		return nil, nil, err
	}
	if a.rollAge <= 0 || a.rollRows < 1 || a.rollBytes < 1 || a.rowGroup < 1 || a.workers < 1 {
		return nil, nil, fmt.Errorf("--archive-roll-age %s, --archive-roll-rows %d, --archive-roll-bytes %s, --archive-row-group %d, --archive-workers %d: use positive values",
			a.rollAge, a.rollRows, a.rollBytes.String(), a.rowGroup, a.workers)
	}
	var sources []archive.Source
	hist := &serve.History{Reader: archive.NewReader(store), Streams: map[string]archive.Source{}, Kafka: kafka}
	for _, s := range streamsOf(plans) {
		src := archive.Source{Stream: s.Name, Topic: s.Name, Schema: s.Source.Schema,
			TimeField: s.Source.TimeField, TimeFormat: s.Source.TimeFormat}
		sources = append(sources, src)
		hist.Streams[s.Name] = src
	}
	results := 0
	for _, p := range plans {
		for i := range p.Outputs {
			if o := &p.Outputs[i]; o.Archive {
				sources = append(sources, archive.ResultSource(p.Name, o))
				results++
			}
		}
	}
	arch, err := archive.New(archive.Config{
		Sources: sources, Kafka: kafka, Store: store, Compression: a.compression, RowGroupRows: a.rowGroup,
		Roll: archive.Roll{Rows: a.rollRows, Bytes: int64(a.rollBytes), Age: a.rollAge}, Hold: hold, Workers: a.workers,
		Registerer: m.Registry, Logger: log, Clients: bus.NewClientMetrics(m.Registry), // ids of their own: pulse-archive-N
	})
	if err != nil {
		return nil, nil, err
	}
	log.Info("archiving raw events and results as Parquet", "store", store.String(), "streams", len(sources)-results, "outputs", results)
	return []lifecycle.Component{{Name: "archive", Run: after(arch.Run)}}, hist, nil
}
