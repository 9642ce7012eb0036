package broker

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pulsehq/pulse/internal/ratelog"
)

// Config configures the embedded broker.
type Config struct {
	// DataDir is where the broker keeps its log segments and metadata.
	DataDir string
	// Listen is the host:port to accept Kafka clients on; port 0 picks one.
	Listen string
	// Advertise is the host:port the broker tells clients to connect to
	// (in metadata responses); empty advertises the listen address. Pulse's
	// own clients are told it too, so it must reach the broker from here.
	Advertise string
	// Partitions is the partition count of topics created without one.
	Partitions int
	// Fsync is when the broker forces its writes to disk (FsyncNone when
	// empty); FsyncInterval syncs every FsyncInterval (default 1 s).
	Fsync         Fsync
	FsyncInterval time.Duration
	Logger        *slog.Logger
}

// Broker is an embedded Kafka-protocol broker.
type Broker struct {
	cfg     Config
	cluster *kfake.Cluster
	addr    string

	syncer    *syncer      // nil with FsyncNone
	release   func() error // of the data dir held for syncing
	stopSync  func()       // ends the interval ticker
	closeOnce sync.Once
}

// Start opens the data directory, reloads what an earlier run persisted and
// starts listening. The broker serves until Run's context ends.
func Start(cfg Config) (*Broker, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create broker data dir %s: %w", cfg.DataDir, err)
	}
	if cfg.Advertise != "" {
		if err := checkHostPort(cfg.Advertise); err != nil {
			return nil, err
		}
	}
	policy, err := ParseFsync(string(cfg.Fsync))
	if err != nil {
		return nil, err
	}
	if err := recoverOpenTxns(cfg.DataDir, cfg.Logger); err != nil {
		return nil, err
	}
	if cfg.FsyncInterval <= 0 {
		cfg.FsyncInterval = time.Second
	}
	warn := ratelog.New(cfg.Logger, 0)
	b := &Broker{cfg: cfg, stopSync: func() {}}
	if policy != FsyncNone {
		syncFS, release, err := newDirSyncer(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		b.syncer, b.release = newSyncer(cfg.DataDir, syncFS, cfg.Logger), release
	}
	var ln net.Listener
	listen := func(network, _ string) (net.Listener, error) {
		l, err := net.Listen(network, cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen for Kafka clients on %s (is another Pulse or Kafka running? choose another address with --kafka-listen): %w", cfg.Listen, err)
		}
		ln = l
		if cfg.Advertise != "" {
			// kfake advertises its listener's address.
			l = advertised{Listener: l, addr: hostPort(cfg.Advertise)}
		}
		if policy == FsyncBatch {
			l = syncListener{Listener: l, s: b.syncer}
		}
		return l, nil
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(listen),
		kfake.DataDir(filepath.Clean(cfg.DataDir)),
		kfake.ClusterID("pulse-embedded"),
		kfake.WithLogger(slogLogger{warn}),
		// Changelog topics are compacted every minute (the default is an
		// hour): each window task rewrites its changed groups at every
		// commit, and only the latest record of a group is needed.
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "60000"}),
	}
	if cfg.Partitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(cfg.Partitions))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		b.closeSyncer()
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	b.cluster, b.addr = c, ln.Addr().String()
	if cfg.Advertise != "" {
		if err := checkReachable(cfg.Advertise); err != nil {
			b.Close()
			return nil, err
		}
	}
	if policy == FsyncInterval {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); b.syncer.every(ctx, cfg.FsyncInterval) }()
		b.stopSync = func() { cancel(); <-done }
	}
	return b, nil
}

// Addr is the host:port the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// Run serves until ctx ends, then closes the broker, persisting its state.
// A failed sync of the data dir (under FsyncInterval or FsyncBatch) ends it
// with the error, so that Pulse stops instead of acknowledging records
// that may not be on disk.
func (b *Broker) Run(ctx context.Context) error {
	var failed chan struct{} // nil, never ready, with FsyncNone
	if b.syncer != nil {
		failed = b.syncer.failed
	}
	select {
	case <-ctx.Done():
		b.Close()
		return nil
	case <-failed:
		b.Close()
		return fmt.Errorf("sync of the embedded broker's data dir %s failed, so nothing more can be acknowledged: %w", b.cfg.DataDir, b.syncer.err)
	}
}

// Advertised is the host:port clients are told to connect to.
func (b *Broker) Advertised() string { return cmp.Or(b.cfg.Advertise, b.addr) }

// Close stops the broker and writes its state out; unless the policy is
// FsyncNone it also syncs it to disk. It is safe to call more than once.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		b.stopSync()
		b.cluster.Close()
		if b.syncer != nil {
			b.syncer.sync()
		}
		b.closeSyncer()
	})
}

func (b *Broker) closeSyncer() {
	if b.syncer != nil {
		b.syncer.close()
		b.release()
	}
}

// slogLogger writes the broker's warnings and errors to Pulse's log, one
// line per message kind and interval while a fault repeats them.
type slogLogger struct{ l *ratelog.Logger }

func (s slogLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	var lv slog.Level
	switch level {
	case kfake.LogLevelError:
		lv = slog.LevelError
	case kfake.LogLevelWarn:
		if strings.HasPrefix(msg, "txn: EndTxn slow") {
			// kfake calls an EndTxn slow from 5 ms on; Pulse's stages
			// end dozens of transactions a second, so under load
			// this would fill the log without saying anything wrong.
			return
		}
		lv = slog.LevelWarn
	default:
		return // the broker's info and debug logs are too chatty for Pulse's log
	}
	// The format names the cause: "persist batch %s-%d: %v" repeats for
	// every batch while the disk is full.
	s.l.Log(lv, msg, fmt.Sprintf(msg, args...), "component", "broker")
}
