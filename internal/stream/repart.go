package stream

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"strconv"

	"github.com/pulsehq/pulse/internal/pipeline"
)

// A pipeline runs in two stages joined by one repartition topic per
// output. The shuffle stage reads the source partitions, filters and
// derives, and writes each event to its output's repartition topic keyed
// (and partitioned) by the output's group key, so that all events of a
// group meet in one window task. Alongside, it writes watermark markers to
// every repartition partition: the highest event time each source
// partition delivered and whether it is idle. A window task's watermark is
// the minimum over the source partitions as the markers report them,
// exactly as if it read the source partitions itself.
//
// Repartition record values: recEvent, the source partition id (uvarint),
// then the source record's value unchanged; or recMarker, a count, then
// per source partition its id (varint), highest event time (varint) and
// flags (markSeen, markIdle).
const (
	recEvent  = 0
	recMarker = 1

	markSeen = 1
	markIdle = 2
)

// RepartitionTopic names the repartition topic of a pipeline's output.
func RepartitionTopic(plan *pipeline.Plan, output string) string {
	return plan.Name + "." + output + ".repartition"
}

// ChangelogTopic names the compacted changelog topic of a pipeline's
// output's window state.
func ChangelogTopic(plan *pipeline.Plan, output string) string {
	return plan.Name + "." + output + ".changelog"
}

// InternalTopics lists the repartition and changelog topics of plan.
func InternalTopics(plan *pipeline.Plan) (repartition, changelog []string) {
	for _, o := range plan.Outputs {
		repartition = append(repartition, RepartitionTopic(plan, o.Name))
		changelog = append(changelog, ChangelogTopic(plan, o.Name))
	}
	return repartition, changelog
}

// partitionFor picks the partition of key among n.
func partitionFor(key []byte, n int32) int32 {
	h := fnv.New32a()
	h.Write(key)
	return int32(h.Sum32() % uint32(n))
}

// appendEventValue frames a source record's value for a repartition topic.
func appendEventValue(b []byte, pid int32, value []byte) []byte {
	b = append(b, recEvent)
	b = binary.AppendUvarint(b, uint64(uint32(pid)))
	return append(b, value...)
}

// mark is one source partition's entry in a watermark marker.
type mark struct {
	pid        int32
	maxTS      int64
	seen, idle bool
}

func appendMarker(b []byte, marks []mark) []byte {
	b = append(b, recMarker)
	b = binary.AppendUvarint(b, uint64(len(marks)))
	for _, m := range marks {
		b = binary.AppendVarint(b, int64(m.pid))
		b = binary.AppendVarint(b, m.maxTS)
		var flags byte
		if m.seen {
			flags |= markSeen
		}
		if m.idle {
			flags |= markIdle
		}
		b = append(b, flags)
	}
	return b
}

var errRepartition = errors.New("malformed repartition record")

// parseEvent returns the source partition and value of an event record.
func parseEvent(v []byte) (int32, []byte, error) {
	if len(v) == 0 || v[0] != recEvent {
		return 0, nil, errRepartition
	}
	pid, n := binary.Uvarint(v[1:])
	if n <= 0 {
		return 0, nil, errRepartition
	}
	return int32(uint32(pid)), v[1+n:], nil
}

// parseMarker appends the entries of a marker record to dst.
func parseMarker(dst []mark, v []byte) ([]mark, error) {
	if len(v) == 0 || v[0] != recMarker {
		return dst, errRepartition
	}
	r := &reader{b: v[1:]}
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		return dst, errRepartition
	}
	for ; n > 0 && r.err == nil; n-- {
		m := mark{pid: int32(r.varint()), maxTS: r.varint()}
		flags := r.byte()
		m.seen, m.idle = flags&markSeen != 0, flags&markIdle != 0
		dst = append(dst, m)
	}
	if r.err != nil || len(r.b) > 0 {
		return dst, errRepartition
	}
	return dst, nil
}

// appendGroupText appends the group key of record r for the given slots:
// the values as text joined by 0x1f, as the engine keys its groups.
func appendGroupText(dst []byte, slots []int, r *Record) []byte {
	for i, s := range slots {
		if i > 0 {
			dst = append(dst, 0x1f)
		}
		dst = r.Vals[s].AppendText(dst)
	}
	return dst
}

func tpKey(topic string, p int32) string { return topic + ":" + strconv.Itoa(int(p)) }
