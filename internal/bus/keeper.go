package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pulsehq/pulse/internal/ratelog"
)

// Topic is a topic Pulse needs: its name, partition count and the
// configuration it is created with (nil: the cluster's defaults).
type Topic struct {
	Name       string
	Partitions int32
	Configs    map[string]string
}

// Keeper creates the topics Pulse needs and, while it runs, creates them
// again when they go missing (deleted by a Kafka client or an operator):
// otherwise every stage writing to a missing topic fails its transactions
// in a loop.
type Keeper struct {
	cl     *kgo.Client
	topics []Topic
	log    *slog.Logger
	warn   *ratelog.Logger
	every  time.Duration
	align  bool // set the configuration on existing topics at the first Ensure

	mu      sync.Mutex
	hooks   []func(topic string)
	problem atomic.Pointer[string] // why the topics are not all there
}

// NewKeeper returns a keeper of topics, checking every interval (default
// 2 s) once it runs.
func NewKeeper(cl *kgo.Client, topics []Topic, every time.Duration, log *slog.Logger) *Keeper {
	if every <= 0 {
		every = 2 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	return &Keeper{cl: cl, topics: topics, log: log, warn: ratelog.New(log, time.Minute), every: every}
}

// AlignConfigs makes the first Ensure also set each topic's
// configuration on the topics that exist already (the embedded broker,
// where Pulse is the operator: a changed --retention takes effect at the
// next start). Without it existing topics stay as their operator
// configured them. Call before Run.
func (k *Keeper) AlignConfigs() { k.align = true }

// OnRecreate registers fn to be called with the name of each topic the
// keeper created again after it went missing. Register before Run.
func (k *Keeper) OnRecreate(fn func(topic string)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.hooks = append(k.hooks, fn)
}

// Ensure creates the topics that do not exist and returns their names.
// Topics that exist are left as they are.
func (k *Keeper) Ensure(ctx context.Context) ([]string, error) {
	adm := kadm.NewClient(k.cl)
	names := make([]string, len(k.topics))
	for i, t := range k.topics {
		names[i] = t.Name
	}
	td, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var created []string
	var existing []Topic
	for _, t := range k.topics {
		if d, ok := td[t.Name]; ok && d.Err == nil {
			existing = append(existing, t)
			continue
		} else if ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return created, fmt.Errorf("describe topic %s: %w", t.Name, d.Err)
		}
		resp, err := adm.CreateTopic(ctx, t.Partitions, -1, ptrs(t.Configs), t.Name)
		if err == nil {
			err = resp.Err
		}
		if errors.Is(err, kerr.TopicAlreadyExists) {
			continue // created meanwhile, by another Pulse
		}
		if err != nil {
			return created, fmt.Errorf("create topic %s with %d partitions: %w", t.Name, t.Partitions, err)
		}
		created = append(created, t.Name)
	}
	if k.align {
		if err := alignConfigs(ctx, adm, existing); err != nil {
			return created, err
		}
		k.align = false
	}
	return created, nil
}

// Health returns nil while every topic exists, else which is missing and
// why it could not be created (for /readyz).
func (k *Keeper) Health(context.Context) error {
	if p := k.problem.Load(); p != nil {
		return errors.New(*p)
	}
	return nil
}

// Run checks the topics every interval until ctx ends, creating those
// that went missing with their partitions and configuration, logging
// each, and telling the OnRecreate hooks.
func (k *Keeper) Run(ctx context.Context) error {
	t := time.NewTicker(k.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		k.check(ctx)
	}
}

func (k *Keeper) check(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, max(k.every, 5*time.Second))
	defer cancel()
	created, err := k.Ensure(cctx)
	if len(created) > 0 {
		k.log.Warn("topics were missing (deleted by a Kafka client?); created them again: records they held are gone",
			"topics", strings.Join(created, ","))
		k.mu.Lock()
		hooks := slices.Clone(k.hooks)
		k.mu.Unlock()
		for _, topic := range created {
			for _, h := range hooks {
				h(topic)
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		msg := err.Error()
		if prev := k.problem.Swap(&msg); prev == nil || *prev != msg {
			k.warn.Resolved("topics")
		}
		k.warn.Warn("topics", "cannot check or create the topics Pulse needs", "err", err)
		return
	}
	if k.problem.Swap(nil) != nil {
		k.warn.Resolved("topics")
		k.log.Info("topics are all there again")
	}
}
