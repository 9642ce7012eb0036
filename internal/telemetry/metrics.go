package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// latencyBuckets has 10 ms steps up to 200 ms, the range of a healthy
// pipeline, so that a quantile read off the buckets is exact to 10 ms.
var latencyBuckets = []float64{.001, .0025, .005, .01, .02, .03, .04, .05, .06, .07, .08, .09, .1,
	.11, .12, .13, .14, .15, .16, .17, .18, .19, .2, .25, .3, .5, .75, 1, 2.5, 5, 10}

// Metrics holds every Pulse metric. Tests create their own with New so
// that parallel servers do not share counters.
type Metrics struct {
	Registry *prometheus.Registry

	IngestEvents     *prometheus.CounterVec   // stream, outcome
	IngestDuration   *prometheus.HistogramVec // stream, code
	IngestRefused    *prometheus.CounterVec   // stream, reason
	IngestInflight   prometheus.Gauge
	PipelineEvents   *prometheus.CounterVec   // pipeline
	PipelineRejected *prometheus.CounterVec   // pipeline
	PipelineFiltered *prometheus.CounterVec   // pipeline
	ConsumerLag      *prometheus.GaugeVec     // pipeline
	WindowResults    *prometheus.CounterVec   // pipeline
	LateEvents       *prometheus.CounterVec   // pipeline
	OpenWindows      *prometheus.GaugeVec     // pipeline
	Watermark        *prometheus.GaugeVec     // pipeline
	Checkpoints      *prometheus.HistogramVec // pipeline
	LiveLatency      *prometheus.HistogramVec // pipeline
	StageLatency     *prometheus.HistogramVec // pipeline, point
	WindowEvents     *prometheus.CounterVec   // pipeline, output
	TxnAborts        *prometheus.CounterVec   // pipeline, stage
	RestoredRecords  *prometheus.CounterVec   // pipeline
	SinkRows         *prometheus.CounterVec   // sink, outcome
	SinkExpired      *prometheus.CounterVec   // pipeline, output
	SinkUp           *prometheus.GaugeVec     // sink
	SinkFailures     *prometheus.CounterVec   // sink
	SinkRetentionErr *prometheus.CounterVec   // pipeline, output
	TableRows        *prometheus.GaugeVec     // table
	TableLag         *prometheus.GaugeVec     // table
	TableInvalid     *prometheus.CounterVec   // table
	JoinUnmatched    *prometheus.CounterVec   // pipeline, output, action
}

// New registers Pulse's metrics and the Go runtime and process collectors
// in a new registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		IngestEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_ingest_events_total",
			Help: "Events received by the ingest API, by stream and outcome (accepted, rejected, malformed, failed).",
		}, []string{"stream", "outcome"}),
		IngestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pulse_ingest_request_duration_seconds",
			Help:    "Duration of ingest requests, from the first byte read to the response, including the broker acknowledgement.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"stream", "code"}),
		IngestRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_ingest_refused_total",
			Help: "Ingest requests turned away before their body was read, by stream and reason (overloaded, consumer lag, broker unreachable, ...); each was answered with Retry-After.",
		}, []string{"stream", "reason"}),
		IngestInflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pulse_ingest_inflight_bytes",
			Help: "Bytes held by ingest requests in flight (bodies plus a per-event overhead), bounded by --max-inflight-bytes.",
		}),
		PipelineEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_pipeline_events_total",
			Help: "Events a pipeline accepted: decoded and passed its where filter.",
		}, []string{"pipeline"}),
		PipelineRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_pipeline_rejected_events_total",
			Help: "Records a pipeline could not decode and sent to the dead-letter topic.",
		}, []string{"pipeline"}),
		PipelineFiltered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_pipeline_filtered_events_total",
			Help: "Events the pipeline's where expression dropped.",
		}, []string{"pipeline"}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pulse_pipeline_consumer_lag",
			Help: "Records in the pipeline's input topic not yet processed, summed over partitions.",
		}, []string{"pipeline"}),
		WindowResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_window_results_total",
			Help: "Final window results a pipeline emitted.",
		}, []string{"pipeline"}),
		LateEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_late_events_total",
			Help: "Events that arrived after their window was final; they are written to the {pipeline}.late topic.",
		}, []string{"pipeline"}),
		OpenWindows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pulse_pipeline_open_windows",
			Help: "Windows holding state, over all outputs of the pipeline.",
		}, []string{"pipeline"}),
		Watermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pulse_pipeline_watermark_seconds",
			Help: "The pipeline's event-time watermark as Unix seconds.",
		}, []string{"pipeline"}),
		Checkpoints: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pulse_checkpoint_duration_seconds",
			Help:    "Duration of committing a window-stage transaction: final results, changelog records, late events and consumed offsets.",
			Buckets: prometheus.DefBuckets,
		}, []string{"pipeline"}),
		LiveLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pulse_pipeline_live_latency_seconds",
			Help:    "From a record's ingest (its Kafka timestamp) to the live-view update that includes it; sampled, one record in 64.",
			Buckets: latencyBuckets,
		}, []string{"pipeline"}),
		StageLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pulse_pipeline_stage_latency_seconds",
			Help: "From a record's ingest (its Kafka timestamp) to a point of the pipeline: shuffle_polled (the shuffle stage read it), " +
				"shuffle_committed (its transaction committed: the window stage may read it), window_folded (a window task folded it); sampled, one record in 64.",
			Buckets: latencyBuckets,
		}, []string{"pipeline", "point"}),
		WindowEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_window_events_total",
			Help: "Events the window stage folded into an output's windows, counted when their transaction commits (an aborted transaction's events count once, when processed again and committed).",
		}, []string{"pipeline", "output"}),
		TxnAborts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_transaction_aborts_total",
			Help: "Transactions a pipeline stage aborted (a rebalance or a failed write); their input is processed again.",
		}, []string{"pipeline", "stage"}),
		RestoredRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_state_restored_records_total",
			Help: "Changelog records read back to restore window tasks.",
		}, []string{"pipeline"}),
		SinkRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_sink_rows_total",
			Help: "Result rows a sink wrote (outcome upserted) or withdrew (outcome retracted).",
		}, []string{"sink", "outcome"}),
		SinkExpired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_sink_expired_rows_total",
			Help: "Stored result rows deleted because they were older than their output's retention.",
		}, []string{"pipeline", "output"}),
		SinkUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pulse_sink_up",
			Help: "1 while the result store's sink writes, 0 while it retries after a failure (a database that cannot be reached, a refused write).",
		}, []string{"sink"}),
		SinkFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_sink_failures_total",
			Help: "Failures of the result store's sink; each starts it again after a capped, jittered backoff, from the offsets stored with the last batch.",
		}, []string{"sink"}),
		SinkRetentionErr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_sink_retention_errors_total",
			Help: "Retention rounds of an output that failed (the store refused the delete); the next round tries again.",
		}, []string{"pipeline", "output"}),
		TableRows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pulse_table_rows",
			Help: "Rows (distinct live keys) a join table holds, by table topic.",
		}, []string{"table"}),
		TableLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pulse_table_lag_records",
			Help: "Committed records of a join table's topic not read yet, summed over partitions.",
		}, []string{"table"}),
		TableInvalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_table_invalid_records_total",
			Help: "Table records skipped because their value is not a JSON object of the declared field types; the key keeps its previous row.",
		}, []string{"table"}),
		JoinUnmatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_join_unmatched_events_total",
			Help: "Events of a join output whose key had no table row, by action: dropped, or written with null table fields (nulled).",
		}, []string{"pipeline", "output", "action"}),
	}
	m.Registry.MustRegister(m.LiveLatency, m.StageLatency, m.WindowEvents, m.TxnAborts, m.RestoredRecords, m.SinkRows, m.SinkExpired, m.SinkRetentionErr, m.SinkUp, m.SinkFailures,
		m.TableRows, m.TableLag, m.TableInvalid, m.JoinUnmatched,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.IngestEvents, m.IngestDuration, m.IngestRefused, m.IngestInflight, m.PipelineEvents, m.PipelineRejected, m.PipelineFiltered, m.ConsumerLag,
		m.WindowResults, m.LateEvents, m.OpenWindows, m.Watermark, m.Checkpoints,
	)
	return m
}
