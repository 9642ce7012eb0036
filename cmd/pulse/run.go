package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/broker"
	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/diskguard"
	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/health"
	"github.com/pulsehq/pulse/internal/ingest"
	"github.com/pulsehq/pulse/internal/lifecycle"
	"github.com/pulsehq/pulse/internal/loadgen"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/serve"
	"github.com/pulsehq/pulse/internal/sink"
	"github.com/pulsehq/pulse/internal/stream"
	"github.com/pulsehq/pulse/internal/telemetry"
)

type runFlags struct {
	dataDir, kafkaListen, brokers, httpAddr, logLevel string
	pipelinesDir                                      string
	builtin                                           bool
	demo                                              bool
	demoRate                                          float64
	demoSensors, demoZones, partitions, workers       int
	maxBody, maxInflight, maxLag                      int64
	disorder, idleTimeout, checkpointEvery            time.Duration
	retentionEvery                                    time.Duration
	liveEvery, livePush, produceTimeout, maxFuture    time.Duration
	shuffleEvery, sessionTimeout, txnTimeout          time.Duration
	stallTimeout, restoreTimeout                      time.Duration
	state                                             string
	stateCache, stateAutoGroups                       int
	nodeID                                            string
	kafkaAdvertise, fsync                             string
	fsyncEvery                                        time.Duration
	retention                                         time.Duration
	retentionBytes                                    byteSize
	memoryLimit                                       byteSize
	diskReserve                                       diskguard.Reserve
	httpMaxConns, liveMaxClients                      int
	httpBodyTimeout, httpWriteTimeout                 time.Duration
	httpMinBodyRate                                   int64
	httpAllowHosts, debugListen                       string
	db                                                string
	archive                                           archiveFlags
}

// runFlagSet defines the flags of pulse run, to be parsed into f.
func runFlagSet(f *runFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("pulse run", flag.ContinueOnError)
	fs.StringVar(&f.dataDir, "data-dir", "./pulse-data", "directory for the embedded broker's log and the SQLite results; reuse it to continue where the last run stopped")
	fs.StringVar(&f.kafkaListen, "kafka-listen", "127.0.0.1:9092", "address the embedded Kafka-protocol broker listens on (any Kafka client can produce to it)")
	fs.StringVar(&f.kafkaAdvertise, "kafka-advertise", "", "host:port the embedded broker tells Kafka clients to connect to, for clients on other hosts or containers (default: the --kafka-listen address); Pulse connects to it too")
	fs.StringVar(&f.fsync, "fsync", "none", "when the embedded broker forces writes to disk: none (the kernel writes back; survives a Pulse crash, not a machine crash), interval (every --fsync-interval) or batch (before acknowledging each write, grouped); see docs/operations.md")
	fs.DurationVar(&f.fsyncEvery, "fsync-interval", time.Second, "how often --fsync interval syncs the embedded broker's data to disk")
	fs.StringVar(&f.brokers, "brokers", "", "comma separated host:port list of an external Kafka cluster; when set no embedded broker starts")
	fs.StringVar(&f.httpAddr, "http", "127.0.0.1:8080", "address of the HTTP server: ingest API, dashboard, results API, /metrics")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.demo, "demo", false, "also run the built-in city simulator so the dashboard is alive at first start")
	fs.Float64Var(&f.demoRate, "demo-rate", 2000, "readings per second the --demo simulator sends")
	fs.IntVar(&f.demoSensors, "demo-sensors", 1000, "sensors the --demo simulator runs")
	fs.IntVar(&f.demoZones, "demo-zones", 20, "zones the --demo simulator's sensors are spread over")
	fs.IntVar(&f.partitions, "partitions", 8, "partitions of the topics Pulse creates")
	fs.IntVar(&f.workers, "workers", 1, "workers per stage of each pipeline in this process, each a member of the stage's consumer group with its own share of the partitions (more use more cores)")
	fs.Int64Var(&f.maxBody, "max-body", 10<<20, "largest ingest request body in bytes, before and after gzip decompression")
	fs.Int64Var(&f.maxInflight, "max-inflight-bytes", ingest.DefaultMaxInflight(), "bytes ingest requests in flight may hold (bodies plus about 250 bytes per event) until the broker acknowledges them; beyond it requests are answered 503 with Retry-After at once, their bodies discarded (default: 1/32 of the memory Pulse may use, between 32 MiB and 128 MiB; 0: no bound)")
	fs.Int64Var(&f.maxLag, "max-lag", 0, "when the pipelines' consumer lag is above this many records, ingest answers 503 with Retry-After (0: no bound)")
	fs.StringVar(&f.db, "db", "", dbUsage)
	fs.StringVar(&f.pipelinesDir, "pipelines", "", "directory of pipeline files (*.yaml) to run besides the built-in ones")
	fs.BoolVar(&f.builtin, "builtin", true, "run the built-in pipelines (city) besides those of --pipelines; --builtin=false runs only yours")
	fs.DurationVar(&f.disorder, "max-out-of-orderness", 0, "override every pipeline's event_time.max_out_of_orderness (how far behind the newest event time an event may arrive)")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 0, "override every pipeline's event_time.idle_timeout (a partition without events this long stops holding the watermark back)")
	fs.DurationVar(&f.retentionEvery, "sink-retention-interval", time.Minute, "how often stored results older than their output's retention are deleted (in batches of 1,000 rows)")
	fs.DurationVar(&f.checkpointEvery, "checkpoint-interval", time.Second, "how often the window stage commits final results, state changelog and offsets in one Kafka transaction")
	fs.DurationVar(&f.shuffleEvery, "shuffle-interval", 10*time.Millisecond, "how often the shuffle stage commits its transaction: the longest an event waits before the window stage sees it")
	fs.DurationVar(&f.sessionTimeout, "session-timeout", 10*time.Second, "how long the consumer groups wait for a silent Pulse process before moving its partitions to the others")
	fs.DurationVar(&f.txnTimeout, "transaction-timeout", 10*time.Second, "how long the broker keeps a dead process's open transaction before aborting it")
	fs.DurationVar(&f.stallTimeout, "stall-timeout", 30*time.Second, "a pipeline stage that holds records this long without committing them is reported not ready by /readyz")
	fs.DurationVar(&f.restoreTimeout, "restore-timeout", 5*time.Minute, "longest a window stage may take to restore its state from the changelog before it gives up and starts again")
	fs.StringVar(&f.state, "state", stream.StateMemory, "where window tasks keep their keyed state: memory (fastest, while it fits), disk (Pebble under --data-dir/state, a bounded cache of groups in memory) or auto (memory until a task holds --state-auto-groups groups, then disk); see docs/operations.md")
	fs.IntVar(&f.stateCache, "state-cache", stream.DefaultStateCache, "with --state disk or auto: groups (keys of one output) each window task keeps decoded in memory")
	fs.IntVar(&f.stateAutoGroups, "state-auto-groups", stream.DefaultStateAutoGroups, "with --state auto: groups a window task holds in memory before it moves its state to disk")
	fs.StringVar(&f.nodeID, "node-id", "", "this process's stable name in the consumer groups' transactional ids (default: generated once and kept in --data-dir/node-id)")
	fs.DurationVar(&f.liveEvery, "live-interval", 0, "override every output's emit.partials (how often live partial results are computed) and, unless --live-push is given, how often live views push them")
	fs.DurationVar(&f.livePush, "live-push", 0, "how often a live view (the dashboard's Server-Sent Events stream) pushes its output's partial results")
	fs.DurationVar(&f.produceTimeout, "produce-timeout", 10*time.Second, "how long ingest waits for the broker before answering 503")
	fs.DurationVar(&f.maxFuture, "max-future", event.DefaultMaxFuture, "events whose time is further ahead of the clock are rejected, at ingest and from the source topics (0 disables); accepted ones advance the watermark only up to the clock")
	fs.DurationVar(&f.retention, "retention", 7*24*time.Hour, "how long the topics of streams, dead letters, late events and results keep records (0: forever)")
	f.retentionBytes = 1 << 30
	fs.Var(&f.retentionBytes, "retention-bytes", "the most each partition of those topics keeps, such as 1GiB (0: no bound); the oldest records go first")
	fs.Var(&f.memoryLimit, "memory-limit", "soft limit of Pulse's memory, such as 2GiB: the Go runtime collects garbage more often as the heap nears it (GOMEMLIMIT in the environment takes precedence; 0, the default: 90% of the machine's or the container's memory); see docs/operations.md")
	f.diskReserve = diskguard.DefaultReserve
	fs.Var(&f.diskReserve, "disk-reserve", "free space of --data-dir's file system below which Pulse refuses ingest (507) and pauses its pipelines until space returns: bytes (512MiB), a share (5%), or both (the smaller), 0 to disable")
	fs.IntVar(&f.httpMaxConns, "http-max-conns", 1024, "most HTTP connections open at once; past it 16 more are accepted that answer only /healthz, /readyz and /metrics (others get 503 with Retry-After), and further ones are closed at once")
	fs.DurationVar(&f.httpBodyTimeout, "http-body-timeout", 10*time.Second, "a request body must arrive within this plus 1 s per --http-min-body-rate bytes, else the request gets 408 and the connection is closed")
	fs.Int64Var(&f.httpMinBodyRate, "http-min-body-rate", 64<<10, "bytes per second a request body must keep up after --http-body-timeout (0: the whole body within --http-body-timeout)")
	fs.DurationVar(&f.httpWriteTimeout, "http-write-timeout", 30*time.Second, "how long a response may take once its request is in (live views excepted); must exceed --produce-timeout")
	fs.StringVar(&f.httpAllowHosts, "http-allow-host", "", "comma separated Host names the HTTP server answers besides localhost and IP addresses (DNS rebinding protection, enforced on a loopback --http or whenever this is set); * answers every name")
	fs.IntVar(&f.liveMaxClients, "live-max-clients", 64, "most live views (dashboards' Server-Sent Events streams) open at once; past it a new one gets 503 with Retry-After")
	fs.StringVar(&f.debugListen, "debug-listen", "", "address of a separate listener serving Go's profiler under /debug/pprof/, e.g. 127.0.0.1:6060 (default: no profiler)")
	f.archive.define(fs)
	return fs
}

func runCmd(ctx context.Context, args []string) error {
	var f runFlags
	fs := runFlagSet(&f)
	if err := parseFlags(fs, args, "pulse run [flags]"); err != nil {
		return err
	}
	if err := f.checkHTTP(); err != nil {
		return err
	}
	if !f.builtin && f.pipelinesDir == "" {
		return errors.New("--builtin=false leaves no pipeline to run: give your pipeline files with --pipelines DIR")
	}
	if f.workers < 1 {
		return fmt.Errorf("--workers %d: a stage needs at least 1 worker", f.workers)
	}
	if err := stream.CheckState(f.state); err != nil {
		return fmt.Errorf("--state: %w", err)
	}
	if f.stateCache < 1 || f.stateAutoGroups < 1 {
		return fmt.Errorf("--state-cache %d, --state-auto-groups %d: use a positive number of groups", f.stateCache, f.stateAutoGroups)
	}
	if f.maxInflight < 0 || f.maxLag < 0 {
		return fmt.Errorf("--max-inflight-bytes %d, --max-lag %d: use a positive value, or 0 for no bound", f.maxInflight, f.maxLag)
	}
	log, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	if _, err := broker.ParseFsync(f.fsync); err != nil {
		return err
	}
	if f.brokers != "" && (f.fsync != string(broker.FsyncNone) || f.kafkaAdvertise != "") {
		log.Warn("--fsync and --kafka-advertise apply to the embedded broker only: with --brokers the cluster's own settings decide", "fsync", f.fsync, "kafka_advertise", f.kafkaAdvertise)
	}
	return run(ctx, f, log)
}

func newLogger(level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})), nil
}

func run(ctx context.Context, f runFlags, log *slog.Logger) error {
	if os.Getenv("GOGC") == "" {
		// Pulse allocates mostly short-lived records; collecting half as
		// often measured 10 % more events/s end to end (docs/benchmarks.md).
		// GOGC and GOMEMLIMIT in the environment take precedence.
		debug.SetGCPercent(200)
	}
	setMemoryLimit(f.memoryLimit, log)
	metrics := telemetry.New()
	var comps []lifecycle.Component
	if err := os.MkdirAll(f.dataDir, 0o755); err != nil {
		return fmt.Errorf("create data dir %s: %w", f.dataDir, err)
	}
	disk, err := diskguard.New(diskguard.Config{Path: f.dataDir, Reserve: f.diskReserve, Registerer: metrics.Registry, Logger: log})
	if err != nil {
		return err
	}
	comps = append(comps, lifecycle.Component{Name: "disk guard", Run: disk.Run})

	brokers := splitList(f.brokers)
	embedded := len(brokers) == 0
	if embedded {
		b, err := broker.Start(broker.Config{DataDir: filepath.Join(f.dataDir, "kafka"), Listen: f.kafkaListen, Advertise: f.kafkaAdvertise,
			Partitions: f.partitions, Fsync: broker.Fsync(f.fsync), FsyncInterval: f.fsyncEvery, Logger: log})
		if err != nil {
			return err
		}
		defer b.Close()
		brokers = []string{b.Addr()}
		comps = append(comps, lifecycle.Component{Name: "broker", Run: b.Run})
		log.Info("embedded Kafka broker listening", "addr", b.Addr(), "advertised", b.Advertised(), "fsync", f.fsync, "data_dir", filepath.Join(f.dataDir, "kafka"))
	}

	plans, err := loadPlans(f.pipelinesDir, f.builtin)
	if err != nil {
		return err
	}
	for _, p := range plans {
		if f.disorder > 0 {
			p.Time.MaxOutOfOrderness = f.disorder
		}
		if f.idleTimeout > 0 {
			p.Time.IdleTimeout = f.idleTimeout
		}
		for i := range p.Outputs {
			if f.liveEvery > 0 && p.Outputs[i].Partials > 0 {
				p.Outputs[i].Partials = f.liveEvery
			}
		}
	}
	breaker := ingest.NewBreaker()
	breaker.OnChange = func(open bool, cause string) {
		if open {
			log.Warn("ingest refuses requests until the broker answers", "cause", cause)
		} else {
			log.Info("broker answers again: ingest accepts requests")
		}
	}
	// The long-lived Kafka clients count what they do (pulse_kafka_*).
	kafkaMetrics := bus.NewClientMetrics(metrics.Registry)
	producer, err := bus.NewClient(brokers, "pulse-ingest", append(append(producerBuffer(f.maxInflight), kafkaMetrics.Opts("pulse-ingest")...),
		kgo.ProducerLinger(2*time.Millisecond), kgo.WithHooks(breaker), bus.Logger(log))...)
	if err != nil {
		return err
	}
	defer producer.Close()
	age := f.retention.Milliseconds()
	if age <= 0 {
		age = -1
	}
	reg := &health.Registry{}
	reg.Add("disk", func(context.Context) error { return disk.Check() })
	keeper := bus.NewKeeper(producer, topicPlan(plans, int32(f.partitions), retention{age: age, bytes: f.retentionBytes.bytes()}, embedded), 0, log)
	if embedded {
		keeper.AlignConfigs()
	}
	kafka := newKafkaSetup(brokers, producer, keeper, log)
	reg.Add("kafka", kafka.Health)
	reg.Add("topics", kafka.topicsHealth)

	// The result store: --db, or SQLite in the data dir; its migrations
	// run as it opens (docs/storage.md).
	store, err := sink.Open(ctx, f.db, f.dataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	log.Info("result store open", "db", store.Dialect())

	node, err := nodeID(f.dataDir, f.nodeID)
	if err != nil {
		return err
	}
	// Every client of the stages, the sink and the archive logs its
	// warnings through Pulse's log.
	cluster := stream.Cluster{Opts: []kgo.Opt{kgo.SeedBrokers(brokers...), bus.Logger(log)}, Node: node,
		SessionTimeout: f.sessionTimeout, TxnTimeout: f.txnTimeout, Clients: kafkaMetrics}
	// Processes writing one PostgreSQL database share its partitions;
	// a SQLite file is each process's own.
	feed := sink.NewFeed(sink.FeedConfig{Store: store, Plans: plans, Opts: cluster.Opts, Metrics: metrics, Clients: kafkaMetrics, Logger: log, Hold: disk.Low,
		Shared: store.Dialect() == "postgres", SessionTimeout: f.sessionTimeout})
	keeper.OnRecreate(feed.TopicRecreated)
	// The ingest producer refuses to write to a topic created again under
	// the name of one it wrote to, until it forgets the old one.
	keeper.OnRecreate(func(topic string) { producer.PurgeTopicsFromClient(topic) })
	board := &stream.Board{}
	// The pipelines start once Kafka answers and the topics exist; each
	// worker is a component of /readyz.
	sinkName := store.Dialect() + " sink" // "sqlite sink", "postgres sink"
	pipeComps := []lifecycle.Component{{Name: "topics", Run: kafka.Run}, {Name: sinkName, Run: kafka.after(feed.Run)}}
	reg.Add(sinkName, feed.Health)
	if ret := sink.NewRetention(sink.RetentionConfig{Store: store, Plans: plans, Metrics: metrics, Logger: log, Every: f.retentionEvery}); !ret.Empty() {
		pipeComps = append(pipeComps, lifecycle.Component{Name: "retention", Run: ret.Run})
	}
	// Window stages start before shuffle stages, so they stop after them.
	var shuffles []lifecycle.Component
	stage := func(name string, run func(context.Context) error, check health.Check) lifecycle.Component {
		reg.Add(name, check)
		return lifecycle.Component{Name: name, Run: kafka.after(run)}
	}
	for _, plan := range plans {
		base := stream.StageConfig{Plan: plan, Cluster: cluster, Metrics: metrics, Logger: log, MaxFuture: f.maxFuture,
			StallTimeout: f.stallTimeout, RestoreTimeout: f.restoreTimeout, Hold: disk.Low,
			State: stream.StateConfig{Store: f.state, Dir: filepath.Join(f.dataDir, "state"), Cache: f.stateCache, AutoGroups: f.stateAutoGroups}}
		wcfg, scfg := base, base
		wcfg.Board, wcfg.CommitEvery = board, f.checkpointEvery
		scfg.CommitEvery, scfg.Board = f.shuffleEvery, board
		for i, win := range stream.NewWindowers(wcfg, f.workers) {
			pipeComps = append(pipeComps, stage(workerName("pipeline "+plan.Name+" windows", i), win.Run, win.Health))
		}
		for i, sh := range stream.NewShufflers(scfg, f.workers) {
			shuffles = append(shuffles, stage(workerName("pipeline "+plan.Name+" shuffle", i), sh.Run, sh.Health))
		}
	}
	pipeComps = append(pipeComps, shuffles...)
	clients := []*kgo.Client{producer}
	// The clients close before the broker stops, so they do not wait on a
	// broker that is gone.
	comps = append(comps, lifecycle.Component{Name: "kafka clients", Run: func(ctx context.Context) error {
		<-ctx.Done()
		for _, c := range clients {
			c.Close()
		}
		return nil
	}})
	comps = append(comps, pipeComps...)
	archiver, history, err := archiveComponent(f, plans, cluster.Opts, metrics, log, disk.Low, kafka.after)
	if err != nil {
		return err
	}
	comps = append(comps, archiver...)

	comps = append(comps, lifecycle.Component{Name: "ingest breaker", Run: func(ctx context.Context) error {
		return breaker.Run(ctx, producer.Ping)
	}})
	// The disk first: a full disk refuses everything, whatever the lag.
	gates := []ingest.Gate{diskGate(disk)}
	if f.maxLag > 0 {
		gates = append(gates, ingest.LagGate(f.maxLag, maxConsumerLag(metrics, plans)))
	}
	ing := ingest.New(ingest.Config{
		Streams: streamsOf(plans),
		Client:  producer, MaxBody: f.maxBody, ProduceTimeout: f.produceTimeout, MaxFuture: f.maxFuture,
		MaxInflight: f.maxInflight, Gates: gates, Breaker: breaker,
		Metrics: metrics, Logger: log,
	})
	srv, err := serve.New(serve.Config{
		Addr: f.httpAddr, Ingest: ing, Pipelines: plans, Store: store, Board: board, History: history,
		Metrics: metrics, Accepted: ing.Accepted, LiveEvery: cmp.Or(f.livePush, f.liveEvery), Logger: log,
		Health:   reg,
		MaxConns: f.httpMaxConns, BodyTimeout: f.httpBodyTimeout, MinBodyRate: f.httpMinBodyRate,
		WriteTimeout: f.httpWriteTimeout, AllowHosts: splitList(f.httpAllowHosts),
		MaxLiveClients: f.liveMaxClients, DebugAddr: f.debugListen,
	})
	if err != nil {
		return err
	}
	comps = append(comps, lifecycle.Component{Name: "http", Run: srv.Run})
	log.Info("HTTP server listening", "addr", srv.Addr(), "dashboard", "http://"+srv.Addr()+"/")
	if a := srv.DebugAddr(); a != "" {
		log.Info("profiler listening", "addr", a, "pprof", "http://"+a+"/debug/pprof/")
	}

	if f.demo {
		target := "http://" + srv.Addr()
		comps = append(comps, lifecycle.Component{Name: "demo simulator", Run: func(ctx context.Context) error {
			_, err := loadgen.Run(ctx, loadgen.Config{
				Target: target, Rate: f.demoRate, Sensors: f.demoSensors, Zones: f.demoZones, Seed: time.Now().UnixNano(),
				Logger: log,
			})
			if ctx.Err() != nil {
				return nil
			}
			return err
		}})
	}
	return lifecycle.Run(ctx, log, 10*time.Second, comps...)
}

// producerBuffer bounds the ingest producer's buffer consistently with
// the in-flight limit: ingest buffers only records of requests in flight,
// so the buffer never holds more than their bodies plus keys and
// dead-letter headers (twice the limit), nor more records than the limit
// holds at 32 bytes an event. With no limit, franz-go's buffer is the
// bound, as before.
func producerBuffer(maxInflight int64) []kgo.Opt {
	if maxInflight <= 0 {
		return []kgo.Opt{kgo.MaxBufferedRecords(1 << 20), kgo.MaxBufferedBytes(512 << 20)}
	}
	return []kgo.Opt{
		kgo.MaxBufferedBytes(int(2 * maxInflight)),
		kgo.MaxBufferedRecords(int(max(maxInflight/32, 1<<16))),
	}
}

// maxConsumerLag returns the largest consumer lag of the pipelines, as
// their shuffle stages last measured it (about once a second).
func maxConsumerLag(m *telemetry.Metrics, plans []*pipeline.Plan) func() int64 {
	gauges := make([]prometheus.Gauge, len(plans))
	for i, p := range plans {
		gauges[i] = m.ConsumerLag.WithLabelValues(p.Name)
	}
	return func() int64 {
		var most float64
		var d dto.Metric
		for _, g := range gauges {
			if err := g.Write(&d); err == nil {
				most = max(most, d.GetGauge().GetValue())
			}
		}
		return int64(most)
	}
}

// diskGate refuses ingest with 507 while the data dir's disk is low: the
// broker must not meet a full disk (see internal/diskguard).
func diskGate(g *diskguard.Guard) ingest.Gate {
	return func() *ingest.Refusal {
		if err := g.Check(); err != nil {
			return &ingest.Refusal{Code: http.StatusInsufficientStorage, RetryAfter: 5 * time.Second, Reason: err.Error()}
		}
		return nil
	}
}

// checkHTTP rejects HTTP limits that cannot work.
func (f *runFlags) checkHTTP() error {
	switch {
	case f.httpMaxConns < 1:
		return fmt.Errorf("--http-max-conns %d: allow at least 1 connection", f.httpMaxConns)
	case f.liveMaxClients < 1:
		return fmt.Errorf("--live-max-clients %d: allow at least 1 live view", f.liveMaxClients)
	case f.httpBodyTimeout <= 0:
		return fmt.Errorf("--http-body-timeout %s: give request bodies a positive time to arrive", f.httpBodyTimeout)
	case f.httpMinBodyRate < 0:
		return fmt.Errorf("--http-min-body-rate %d: use 0 or more bytes per second", f.httpMinBodyRate)
	case f.httpWriteTimeout <= f.produceTimeout:
		return fmt.Errorf("--http-write-timeout %s must exceed --produce-timeout %s, or ingest answers would be cut off while they wait for the broker", f.httpWriteTimeout, f.produceTimeout)
	}
	return nil
}

// splitList splits a comma separated flag value (brokers, host names),
// dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// workerName names worker i of a stage in the logs.
func workerName(stage string, i int) string {
	if i == 0 {
		return stage
	}
	return fmt.Sprintf("%s %d", stage, i)
}

// nodeID returns the flag's value, or the id kept in dataDir, creating it
// on first start.
func nodeID(dataDir, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	path := filepath.Join(dataDir, "node-id")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate node id: %w", err)
	}
	id := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dataDir, err)
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("keep node id in %s: %w", path, err)
	}
	return id, nil
}

// loadPlans returns the built-in pipelines (unless withBuiltin is false)
// plus those in dir.
func loadPlans(dir string, withBuiltin bool) ([]*pipeline.Plan, error) {
	builtin, err := pipeline.Builtin()
	if err != nil {
		return nil, fmt.Errorf("built-in pipelines: %w", err)
	}
	if !withBuiltin {
		builtin = nil
	}
	if dir == "" {
		return builtin, pipeline.Link(builtin)
	}
	user, err := pipeline.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pipelines in %s (check them with pulse pipeline validate): %w", dir, err)
	}
	plans, err := pipeline.Merge(builtin, user)
	if err != nil {
		return nil, err
	}
	if err := pipeline.Link(plans); err != nil {
		return nil, fmt.Errorf("pipelines in %s (check them with pulse pipeline validate): %w", dir, err)
	}
	return plans, nil
}

// streamsOf lists the ingest streams: one per source topic.
func streamsOf(plans []*pipeline.Plan) []ingest.Stream {
	seen := map[string]bool{}
	var out []ingest.Stream
	for _, p := range plans {
		if p.Source.Pipeline != "" {
			continue // another pipeline's output: nobody posts to it
		}
		for _, t := range p.Source.Topics {
			if !seen[t] {
				seen[t] = true
				out = append(out, ingest.Stream{Name: t, Source: p.Source})
			}
		}
	}
	return out
}

// setMemoryLimit sets the Go runtime's soft memory limit: limit, or 90 %
// of the memory available (physical memory or the cgroup's limit) when it
// is 0, unless GOMEMLIMIT is set. The limit makes the collector run more
// often as the heap nears it, rather than let GOGC=200 triple a large
// live heap; the live heap itself is bounded by the state stores
// (docs/operations.md, Memory).
func setMemoryLimit(limit byteSize, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if limit == 0 {
		mem := ingest.AvailableMemory()
		if mem == math.MaxInt64 {
			return
		}
		limit = byteSize(mem / 10 * 9)
	}
	debug.SetMemoryLimit(int64(min(uint64(limit), math.MaxInt64)))
	log.Debug("memory limit", "bytes", uint64(limit))
}
