package main

import (
	"fmt"
	"strconv"

	"github.com/dustin/go-humanize"

	"github.com/pulsehq/pulse/internal/bus"
	"github.com/pulsehq/pulse/internal/pipeline"
	"github.com/pulsehq/pulse/internal/stream"
)

// Segment sizes on the embedded broker: retention and Pulse's own record
// deletion free disk a whole segment at a time, and the broker's default
// of 100 MiB per partition would keep gigabytes that nobody reads.
const (
	embeddedSegment       = 16 << 20 // streams, dead letters, late events, results
	embeddedSegmentRepart = 4 << 20  // deleted behind the window stage every 30 s
	embeddedSegmentState  = 1 << 20  // deleted behind each snapshot; small, so that it frees soon
)

// retention bounds the topics that hold events and results.
type retention struct {
	age   int64 // ms; -1: none
	bytes int64 // per partition; -1: none
}

// topicPlan lists every topic the pipelines read or write, and their
// internal repartition and changelog topics, with partitions and
// configuration:
//   - streams, their dead letters, late events and results keep events for
//     the retention (time and size);
//   - repartition topics are deleted behind the window stage as it commits
//     (stream purge), and kept at most the retention;
//   - changelog topics are deleted behind each task's snapshot. On the
//     embedded broker that is all (cleanup.policy delete): its compaction
//     pass rewrites whole segments, which a full disk can leave corrupt,
//     and the snapshots make it redundant. On an external cluster they are
//     also compacted, which bounds them if deleting records is refused;
//   - the tables of join outputs are compacted and never expire (on the
//     embedded broker, kept whole).
func topicPlan(plans []*pipeline.Plan, partitions int32, ret retention, embedded bool) []bus.Topic {
	kept := map[string]string{
		"cleanup.policy":  "delete",
		"retention.ms":    strconv.FormatInt(ret.age, 10),
		"retention.bytes": strconv.FormatInt(ret.bytes, 10),
	}
	repart := map[string]string{
		"cleanup.policy":  "delete",
		"retention.ms":    strconv.FormatInt(ret.age, 10),
		"retention.bytes": "-1",
	}
	changelog := map[string]string{
		"cleanup.policy":  "compact,delete",
		"retention.ms":    "-1",
		"retention.bytes": "-1",
	}
	// A join's table keeps the latest row of every key: compacted, never
	// expired. On the embedded broker, as changelogs, it is not compacted
	// (kept whole): tables are small reference data.
	table := map[string]string{"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1"}
	if embedded {
		table["cleanup.policy"] = "delete"
		kept["segment.bytes"] = strconv.Itoa(embeddedSegment)
		repart["segment.bytes"] = strconv.Itoa(embeddedSegmentRepart)
		changelog["cleanup.policy"] = "delete"
		changelog["segment.bytes"] = strconv.Itoa(embeddedSegmentState)
	}
	seen := map[string]bool{}
	var out []bus.Topic
	add := func(name string, configs map[string]string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, bus.Topic{Name: name, Partitions: partitions, Configs: configs})
		}
	}
	for _, p := range plans {
		for _, t := range p.Source.Topics {
			add(t, kept)
			add(pipeline.DLQTopic(t), kept)
		}
		add(pipeline.LateTopic(p.Name), kept)
		for _, o := range p.Outputs {
			add(o.Topic, kept)
			if o.Join != nil {
				add(o.Join.Table, table) // a join's table: kept whole
			}
		}
		reparts, changelogs := stream.InternalTopics(p)
		for _, t := range reparts {
			add(t, repart)
		}
		for _, t := range changelogs {
			add(t, changelog)
		}
	}
	return out
}

// byteSize is a flag of bytes written as "1GiB", "500MB" or a plain number;
// 0 means no bound.
type byteSize uint64

func (b *byteSize) Set(s string) error {
	v, err := humanize.ParseBytes(s)
	if err != nil {
		return fmt.Errorf("%q: give bytes such as 1GiB or 500MB", s)
	}
	*b = byteSize(v)
	return nil
}

func (b *byteSize) String() string {
	if *b == 0 {
		return "0"
	}
	return humanize.IBytes(uint64(*b))
}

// bytes returns b as a Kafka size configuration: -1 for no bound.
func (b byteSize) bytes() int64 {
	if b == 0 {
		return -1
	}
	return int64(b)
}
