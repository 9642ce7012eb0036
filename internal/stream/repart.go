package stream

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"math"
	"strconv"
	"unsafe"

	"github.com/pulsehq/pulse/internal/event"
	"github.com/pulsehq/pulse/internal/pipeline"
)

// A pipeline runs in two stages joined by one repartition topic per
// output. The shuffle stage reads the source partitions, filters and
// derives, and writes each event to its output's repartition topic,
// partitioned by the output's group key, so that all events of a group
// meet in one window task. Alongside, it writes watermark markers to every
// repartition partition: the highest event time each source partition
// delivered and whether it is idle. A window task's watermark is the
// minimum over the source partitions as the markers report them, exactly
// as if it read the source partitions itself.
//
// Events travel in batches: one repartition record carries every event of
// one poll bound for its partition (up to maxBatchBytes), so the broker
// and the clients handle a record per partition and poll, not per event.
// Repartition record values:
//   - recBatchKinds, the layout fingerprint (4 bytes, big endian), then
//     the events, each framed by its length (uvarint): the source
//     partition id (uvarint), the source offset (uvarint), the ingest time
//     in ms (varint), the record kind (a byte: insert, update or delete,
//     for a source that is another pipeline's output), then the decoded
//     record: event time (varint), value count (uvarint) and values (see
//     appendEvent); recBatch, written before kinds, is the same without
//     the kind byte, and is read as inserts;
//   - recMarker, a count, then per source partition its id (varint),
//     highest event time (varint) and flags (markSeen, markIdle).
//
// The shuffle stage decodes each event once: the window stage reads the
// values, not the JSON. The source record itself does not travel (it
// would more than double the bytes): a late event is written as the
// window stage saw it, with the source topic, partition and offset of the
// original.
const (
	recMarker = 1
	recBatch  = 2 // 0 was a single event, before batches
	// recBatchKinds is a batch whose events carry their record kind.
	recBatchKinds = 3

	markSeen = 1
	markIdle = 2

	// maxBatchBytes bounds a repartition record; a batch that reaches it
	// is written and a new one begins.
	maxBatchBytes = 256 << 10
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

// srcEvent is where a repartitioned event came from.
type srcEvent struct {
	pid    int32 // source partition id
	offset int64 // offset in the source partition
	ingest int64 // source record timestamp, ms: when it was ingested
	// kind is what the source record does to the row it names: an
	// insert, unless the source is another pipeline's output.
	kind RecordKind
}

// appendBatchHeader begins a batch of events decoded with layout.
func appendBatchHeader(b []byte, layout uint32) []byte {
	return binary.BigEndian.AppendUint32(append(b, recBatchKinds), layout)
}

// appendEvent appends one event of a batch, without its length frame.
func appendEvent(b []byte, src srcEvent, r *Record) []byte {
	b = binary.AppendUvarint(b, uint64(uint32(src.pid)))
	b = binary.AppendUvarint(b, uint64(src.offset))
	b = binary.AppendVarint(b, src.ingest)
	b = append(b, byte(src.kind))
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
	return b
}

// appendFramed appends an event encoded by appendEvent with its length.
func appendFramed(b, ev []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(ev))), ev...)
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

// openBatch checks a batch record's header and returns its framed events.
// A batch of another layout returns its events with errLayout: where they
// came from can still be read.
func openBatch(v []byte, layout uint32) ([]byte, error) {
	if len(v) < 5 || (v[0] != recBatch && v[0] != recBatchKinds) {
		return nil, errRepartition
	}
	if binary.BigEndian.Uint32(v[1:]) != layout {
		return v[5:], errLayout
	}
	return v[5:], nil
}

// nextEvent splits the first framed event off events.
func nextEvent(events []byte) (ev, rest []byte, err error) {
	n, k := binary.Uvarint(events)
	if k <= 0 || n > uint64(len(events)-k) {
		return nil, nil, errRepartition
	}
	return events[k : k+int(n)], events[k+int(n):], nil
}

// readSource reads where an event came from and returns the rest: its
// decoded record, for readRecord.
func readSource(ev []byte) (srcEvent, []byte, error) { return readSourceOf(ev, true) }

// readSourceOf is readSource for an event of a batch with record kinds or,
// kinds false, of one written before them (inserts).
func readSourceOf(ev []byte, kinds bool) (srcEvent, []byte, error) {
	rd := &reader{b: ev}
	src := srcEvent{pid: int32(uint32(rd.uvarint())), offset: int64(rd.uvarint()), ingest: rd.varint()}
	if kinds {
		src.kind = RecordKind(rd.byte())
	}
	if rd.err != nil || src.kind > KindDelete {
		return srcEvent{}, nil, errRepartition
	}
	return src, rd.b, nil
}

// slotUse says how a window task reads one slot of the events it folds;
// the values are ordered, so that max gives the use a slot needs when
// several readers share it.
type slotUse uint8

const (
	skipSlot slotUse = iota // not read: left null
	viewSlot                // read during the fold only: strings point into b
	keepSlot                // kept by an aggregate (first, last): strings interned
)

// readRecord decodes the values that follow an event's source into r.
// With need nil every value is decoded and strings are interned with strs.
// Otherwise need[i] says how to read slot i: skipped, or for strings, as a
// view of b without a copy (the caller must not keep r's strings once b
// may change), or interned.
func readRecord(b []byte, r *Record, strs *interner, need []slotUse) error {
	rd := &reader{b: b}
	r.TS = rd.varint()
	n := rd.uvarint()
	if rd.err != nil || n != uint64(len(r.Vals)) {
		return errRepartition
	}
	for i := range r.Vals {
		switch k := event.ValueKind(rd.byte()); k {
		case event.Null:
			r.Vals[i] = event.Value{}
		case event.Number:
			if len(rd.b) < 8 {
				return errRepartition
			}
			r.Vals[i] = event.NumberValue(math.Float64frombits(binary.BigEndian.Uint64(rd.b)))
			rd.b = rd.b[8:]
		case event.String:
			b := rd.bytes()
			switch {
			case need == nil || need[i] == keepSlot:
				r.Vals[i] = event.StringValue(strs.intern(b))
			case need[i] == viewSlot:
				r.Vals[i] = event.StringValue(unsafe.String(unsafe.SliceData(b), len(b)))
			default:
				r.Vals[i] = event.Value{}
			}
		case event.Bool:
			r.Vals[i] = event.BoolValue(rd.byte() == 1)
		default:
			return errRepartition
		}
	}
	if rd.err != nil || len(rd.b) > 0 {
		return errRepartition
	}
	return nil
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

// appendGroupText appends the group key of record r for the given slots,
// encoded as event.JoinKey encodes keys: the engine's group id, and what
// the shuffle partitions by.
func appendGroupText(dst []byte, slots []int, r *Record) []byte {
	for i, s := range slots {
		if i > 0 {
			dst = append(dst, event.KeySep)
		}
		dst = event.AppendKeyValue(dst, r.Vals[s])
	}
	return dst
}

func tpKey(topic string, p int32) string { return topic + ":" + strconv.Itoa(int(p)) }
