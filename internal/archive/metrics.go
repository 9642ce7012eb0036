package archive

import "github.com/prometheus/client_golang/prometheus"

// metrics are the archiver's; New registers them.
type metrics struct {
	events, files, bytes, skipped *prometheus.CounterVec
	failing                       prometheus.Gauge
	errors                        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_archive_events_total",
			Help: "Events written to published archive files, by stream (events of a roll written again after a restart or a fault count again).",
		}, []string{"stream"}),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_archive_files_total",
			Help: "Parquet files the archiver published, by stream.",
		}, []string{"stream"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_archive_bytes_total",
			Help: "Bytes of the Parquet files the archiver published, by stream.",
		}, []string{"stream"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_archive_skipped_records_total",
			Help: "Records of a stream's topic the archiver could not archive (not valid events of the stream; the pipelines send them to the dead-letter topic), by stream.",
		}, []string{"stream"}),
		failing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_archive_failing",
			Help: "1 while archiving stops on an error of the archive's store (a full disk, an S3 error) and retries; 0 while it works.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_archive_errors_total",
			Help: "Failed archive attempts (writing, uploading or listing files); each is retried from the last published file.",
		}),
	}
	for _, c := range []prometheus.Collector{m.events, m.files, m.bytes, m.skipped, m.failing, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// streamMetrics are one stream's counters.
type streamMetrics struct {
	events, files, bytes, skipped prometheus.Counter
}

func (m *metrics) stream(name string) streamMetrics {
	return streamMetrics{events: m.events.WithLabelValues(name), files: m.files.WithLabelValues(name),
		bytes: m.bytes.WithLabelValues(name), skipped: m.skipped.WithLabelValues(name)}
}
