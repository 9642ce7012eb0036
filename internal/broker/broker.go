package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config configures the embedded broker.
type Config struct {
	// DataDir is where the broker keeps its log segments and metadata.
	DataDir string
	// Listen is the host:port to accept Kafka clients on; port 0 picks one.
	Listen string
	// Partitions is the partition count of topics created without one.
	Partitions int
	Logger     *slog.Logger
}

// Broker is an embedded Kafka-protocol broker.
type Broker struct {
	cfg     Config
	cluster *kfake.Cluster
	addr    string
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
	var ln net.Listener
	listen := func(network, _ string) (net.Listener, error) {
		l, err := net.Listen(network, cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen for Kafka clients on %s (is another Pulse or Kafka running? choose another address with --kafka-listen): %w", cfg.Listen, err)
		}
		ln = l
		return l, nil
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(listen),
		kfake.DataDir(filepath.Clean(cfg.DataDir)),
		kfake.ClusterID("pulse-embedded"),
		kfake.WithLogger(slogLogger{cfg.Logger}),
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
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	return &Broker{cfg: cfg, cluster: c, addr: ln.Addr().String()}, nil
}

// Addr is the host:port the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// Run serves until ctx ends, then closes the broker, persisting its state.
func (b *Broker) Run(ctx context.Context) error {
	<-ctx.Done()
	b.Close()
	return nil
}

// Close stops the broker and flushes its state to disk. It is safe to call
// more than once.
func (b *Broker) Close() { b.cluster.Close() }

type slogLogger struct{ l *slog.Logger }

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
	s.l.Log(context.Background(), lv, fmt.Sprintf(msg, args...), "component", "broker")
}
