package stream

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"math"
	"strconv"

	"github.com/pulsehq/pulse/internal/event"
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
// the decoded record (layout fingerprint, event time, values; see
// appendRecord), then the source record's value unchanged, for the late
// topic; or recMarker, a count, then per source partition its id
// (varint), highest event time (varint) and flags (markSeen, markIdle).
// The shuffle stage decodes each event once: the window stage reads the
// values, not the JSON.
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

// partitionFor picks the partition of key among n by the key's 32-bit
// FNV-1a hash.
func partitionFor(key []byte, n int32) int32 {
	h := uint32(2166136261)
	for _, c := range key {
		h = (h ^ uint32(c)) * 16777619
	}
	return int32(h % uint32(n))
}

// appendEventValue frames a decoded record and its source value for a
// repartition topic.
func appendEventValue(b []byte, pid int32, layout uint32, r *Record, value []byte) []byte {
	b = append(b, recEvent)
	b = binary.AppendUvarint(b, uint64(uint32(pid)))
	b = binary.BigEndian.AppendUint32(b, layout)
	b = binary.AppendVarint(b, r.TS)
	b = binary.AppendUvarint(b, uint64(len(r.Vals)))
	for _, v := range r.Vals {
		b = append(b, byte(v.Kind))
		switch v.Kind {
		case event.Number:
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(v.Num))
		case event.String:
			b = appendString(b, v.Str)
		case event.Bool:
			if v.B {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	}
	return append(b, value...)
}

// layoutOf fingerprints a decoder's slot layout: the window stage refuses
// records whose values were laid out by another version of the pipeline.
func layoutOf(d *Decoder) uint32 {
	h := fnv.New32a()
	for _, s := range d.slots {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum32()
}

var errLayout = errors.New("the record was shuffled by another version of the pipeline file (its fields differ): restart every Pulse process with the same pipeline files")

// readEventValue decodes an event record into r, interning strings with
// intern, and returns its source partition and source value.
func readEventValue(v []byte, layout uint32, r *Record, intern func([]byte) string) (int32, []byte, error) {
	if len(v) == 0 || v[0] != recEvent {
		return 0, nil, errRepartition
	}
	rd := &reader{b: v[1:]}
	pid := rd.uvarint()
	if rd.err != nil || len(rd.b) < 4 {
		return 0, nil, errRepartition
	}
	if binary.BigEndian.Uint32(rd.b) != layout {
		return 0, nil, errLayout
	}
	rd.b = rd.b[4:]
	r.TS = rd.varint()
	n := rd.uvarint()
	if rd.err != nil || n != uint64(len(r.Vals)) {
		return 0, nil, errRepartition
	}
	for i := range r.Vals {
		switch k := event.ValueKind(rd.byte()); k {
		case event.Null:
			r.Vals[i] = event.Value{}
		case event.Number:
			if len(rd.b) < 8 {
				return 0, nil, errRepartition
			}
			r.Vals[i] = event.NumberValue(math.Float64frombits(binary.BigEndian.Uint64(rd.b)))
			rd.b = rd.b[8:]
		case event.String:
			r.Vals[i] = event.StringValue(intern(rd.bytes()))
		case event.Bool:
			r.Vals[i] = event.BoolValue(rd.byte() == 1)
		default:
			return 0, nil, errRepartition
		}
	}
	if rd.err != nil {
		return 0, nil, errRepartition
	}
	return int32(uint32(pid)), rd.b, nil
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
