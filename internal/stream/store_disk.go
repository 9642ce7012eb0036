package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// diskStore is a GroupStore in a Pebble database of its own, for state
// larger than memory. Groups live encoded in Pebble, as their changelog
// records (appendGroup) preceded by their timer (keyState.sched); at most
// about cacheMax of them are kept decoded in memory, least recently used
// first out. Timers are a time-ordered index in Pebble, scanned up to the
// watermark, so that no part of the store grows with the keys in memory.
//
// The database is a cache of the changelog, not a source of truth: a task
// restores from its changelog into a fresh, empty directory, so nothing is
// synced to disk and Pebble runs without its write-ahead log. A failing
// read or write calls fail: the transaction in progress must abort, and
// the task restore from its changelog.
//
// A group changed since the last changelog flush (keyState.logged) may
// be evicted before the flush, as windows that end together make every
// group change at once: its encoding in Pebble is what the flush writes to
// the changelog (AppendPending), so it is encoded once. A group the flush
// writes from the cache is written to Pebble with the same encoding
// (Persisted), and evicted later without encoding it again.
type diskStore struct {
	db    *pebble.DB
	dir   string
	codec *outState
	fail  func(error)
	err   error

	cacheMax int
	cache    map[string]*entry
	lru      entryList // the cached groups, the most recently used first
	groups   int
	// pending holds the ids of the groups evicted while they had changes
	// the changelog flush has not written yet (keyState.logged), with
	// their encoding while those fit in pendingMax bytes (else nil: the
	// flush reads it from Pebble).
	pending      map[string][]byte
	pendingBytes int
	pendingBuf   arena

	timers  int
	due     []timer // timers read from Pebble, due, in order
	dueNext int
	// earliest bounds the time of the timers left in Pebble from below.
	earliest int64
	// resume, when set, is a key no timer left in Pebble is below:
	// reading from there skips the deleted ones (Pebble keeps them as
	// tombstones until a compaction).
	resume []byte

	// hand is the key a sweep (Sweep) continues from.
	hand []byte

	key, val []byte
}

// entry is a group in the cache.
type entry struct {
	ks         *keyState
	prev, next *entry
	// clean is set while Pebble holds the group as it is; onDisk while
	// Pebble holds it at all.
	clean, onDisk bool
}

// Key prefixes in the database.
const (
	diskGroup = 'g' // + group id → varint sched, uvarint gen, appendGroup
	diskTimer = 't' // + 8 bytes of time, order-preserving + group id → nothing
)

// openDiskStore opens a store in dir, which must be empty or missing,
// keeping up to cacheMax groups decoded; blockCache is Pebble's block
// cache in bytes.
func openDiskStore(dir string, o *outState, cacheMax int, blockCache int64, fail func(error)) (*diskStore, error) {
	cache := pebble.NewCache(blockCache)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache:      cache,
		DisableWAL: true, // a cache of the changelog: nothing to recover
		// Memtables start at 256 KiB and double up to this size.
		MemTableSize:                16 << 20,
		MemTableStopWritesThreshold: 4,
		Logger:                      quietLogger{},
	}
	for i := range opts.Levels {
		// Most lookups of a new group find nothing: a filter answers
		// them without reading blocks.
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	// Blocks are read back at the rate of events: uncompressed, they
	// cost less CPU (docs/benchmarks.md, State at scale).
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", dir, err)
	}
	s := &diskStore{db: db, dir: dir, codec: o, fail: fail, cacheMax: max(cacheMax, 1),
		cache: map[string]*entry{}, pending: map[string][]byte{}, earliest: math.MaxInt64}
	s.lru.init()
	return s, nil
}

// quietLogger drops Pebble's informational messages; errors reach the
// store through its calls.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Errorf(string, ...any)          {}
func (quietLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// failed reports err once to fail.
func (s *diskStore) failed(what string, err error) {
	if s.err == nil {
		s.err = fmt.Errorf("state store %s: %s: %w", s.dir, what, err)
		if s.fail != nil {
			s.fail(s.err)
		}
	}
}

func (s *diskStore) Lookup(id []byte) *keyState {
	if e := s.cache[string(id)]; e != nil {
		return s.use(e)
	}
	return s.load(string(id))
}

func (s *diskStore) Get(id string) *keyState {
	if e := s.cache[id]; e != nil {
		return s.use(e)
	}
	return s.load(id)
}

// Current looks ks up by its id: an evicted group is read back as
// another keyState.
func (s *diskStore) Current(ks *keyState) *keyState { return s.Get(ks.id) }

// use marks e as the most recently used, and changed: the engine may
// change a group it looked up.
func (s *diskStore) use(e *entry) *keyState {
	s.lru.remove(e)
	s.lru.pushFront(e)
	e.clean = false
	return e.ks
}

// load reads group id from Pebble into the cache.
func (s *diskStore) load(id string) *keyState {
	s.key = append(append(s.key[:0], diskGroup), id...)
	v, closer, err := s.db.Get(s.key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		s.failed("read group", err)
		return nil
	}
	ks, err := s.decode(id, v)
	closer.Close()
	if err != nil {
		s.failed("decode group", err)
		return nil
	}
	if _, ok := s.pending[id]; ok {
		ks.logged = true // the cached group carries it now
		delete(s.pending, id)
	}
	s.add(&entry{ks: ks, onDisk: true})
	return ks
}

func (s *diskStore) decode(id string, v []byte) (*keyState, error) {
	sched, gen, enc, ok := splitDiskGroup(v)
	if !ok {
		return nil, errShort
	}
	ks, err := s.codec.decodeGroup(enc)
	if err != nil {
		return nil, err
	}
	ks.id, ks.sched, ks.gen = id, sched, gen
	return ks, nil
}

// splitDiskGroup splits a group's value in the database into its timer,
// its changelog generation and its changelog encoding.
func splitDiskGroup(v []byte) (sched int64, gen uint64, enc []byte, ok bool) {
	sched, n := binary.Varint(v)
	if n <= 0 {
		return 0, 0, nil, false
	}
	gen, m := binary.Uvarint(v[n:])
	if m <= 0 {
		return 0, 0, nil, false
	}
	return sched, gen, v[n+m:], true
}

// add puts e in the cache as the most recently used, and evicts.
func (s *diskStore) add(e *entry) {
	s.cache[e.ks.id] = e
	s.lru.pushFront(e)
	s.evict()
}

// evict writes back and forgets the least recently used groups while the
// cache holds more than cacheMax, never the most recent: the engine holds
// it.
func (s *diskStore) evict() {
	for len(s.cache) > s.cacheMax {
		e := s.lru.back()
		if e == nil || e == s.lru.front() {
			return
		}
		s.lru.remove(e)
		wrote := !e.clean
		if wrote {
			s.write(e.ks, nil)
		}
		if e.ks.logged {
			s.keepPending(e.ks.id, wrote)
		}
		delete(s.cache, e.ks.id)
	}
}

// pendingMax bounds the encodings of evicted groups a disk store keeps
// for the next changelog flush.
const pendingMax = 32 << 20

// keepPending notes that group id was evicted with unflushed changes,
// with its encoding (in s.val if wrote: just written) while they fit.
func (s *diskStore) keepPending(id string, wrote bool) {
	var enc []byte
	if _, _, v, ok := splitDiskGroup(s.val); wrote && ok && s.pendingBytes+len(v) <= pendingMax {
		enc = s.pendingBuf.keep(append(s.pendingBuf.free(), v...))
		s.pendingBytes += len(enc)
	}
	s.pending[id] = enc
}

// write puts ks in Pebble; enc, if not nil, is its appendGroup encoding.
func (s *diskStore) write(ks *keyState, enc []byte) {
	s.key = append(append(s.key[:0], diskGroup), ks.id...)
	s.val = binary.AppendUvarint(binary.AppendVarint(s.val[:0], ks.sched), ks.gen)
	if enc != nil {
		s.val = append(s.val, enc...)
	} else {
		s.val = s.codec.appendGroup(s.val, ks)
	}
	if err := s.db.Set(s.key, s.val, pebble.NoSync); err != nil {
		s.failed("write group", err)
	}
}

func (s *diskStore) Insert(ks *keyState) {
	s.groups++
	s.add(&entry{ks: ks})
}

func (s *diskStore) Delete(id string) {
	e := s.cache[id]
	if e == nil {
		// Not expected: the engine deletes groups it just looked up.
		if s.Get(id) == nil {
			return
		}
		e = s.cache[id]
	}
	s.lru.remove(e)
	delete(s.cache, id)
	delete(s.pending, id)
	s.groups--
	if e.onDisk {
		s.key = append(append(s.key[:0], diskGroup), id...)
		if err := s.db.Delete(s.key, pebble.NoSync); err != nil {
			s.failed("delete group", err)
		}
	}
}

func (s *diskStore) Len() int { return s.groups }

// Each visits the cached groups, then reads the others from Pebble.
func (s *diskStore) Each(fn func(ks *keyState)) {
	for _, e := range s.cache {
		fn(e.ks)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{diskGroup}, UpperBound: []byte{diskGroup + 1}})
	if err != nil {
		s.failed("read groups", err)
		return
	}
	for it.First(); it.Valid(); it.Next() {
		id := it.Key()[1:]
		if s.cache[string(id)] != nil {
			continue
		}
		ks, err := s.decode(string(id), it.Value())
		if err != nil {
			s.failed("decode group", err)
			break
		}
		_, ks.logged = s.pending[ks.id]
		fn(ks)
	}
	if err := it.Close(); err != nil {
		s.failed("read groups", err)
	}
}

// timerKey appends the Pebble key of a timer: times in big-endian with
// the sign bit flipped sort as the numbers do.
func timerKey(b []byte, at int64, id string) []byte {
	b = append(b, diskTimer)
	b = binary.BigEndian.AppendUint64(b, uint64(at)^1<<63)
	return append(b, id...)
}

func timerAt(key []byte) int64 { return int64(binary.BigEndian.Uint64(key[1:9]) ^ 1<<63) }

func (s *diskStore) Schedule(at int64, id string) {
	s.key = timerKey(s.key[:0], at, id)
	if s.resume != nil && bytes.Compare(s.key, s.resume) < 0 {
		s.resume = nil
	}
	if err := s.db.Set(s.key, nil, pebble.NoSync); err != nil {
		s.failed("write timer", err)
	}
	s.timers++
	s.earliest = min(s.earliest, at)
}

// dueBatch is how many due timers Due reads from Pebble at once.
const dueBatch = 1024

// Due hands out the timers read from Pebble, and reads the next ones up
// to upTo (deleting them) when those are gone. A timer set meanwhile for
// a time before those handed out is read with the next batch.
func (s *diskStore) Due(upTo int64) (timer, bool) {
	if s.dueNext == len(s.due) {
		if s.earliest > upTo {
			return timer{}, false
		}
		s.readDue(upTo)
		if len(s.due) == 0 {
			return timer{}, false
		}
	}
	t := s.due[s.dueNext]
	s.due[s.dueNext] = timer{}
	s.dueNext++
	return t, true
}

// readDue reads up to dueBatch timers due at upTo into s.due and deletes
// them from Pebble; it sets earliest to the time of the next one left.
func (s *diskStore) readDue(upTo int64) {
	s.due, s.dueNext = s.due[:0], 0
	lower := bytes.Clone(s.resume) // Pebble holds on to it; resume changes
	if lower == nil {
		lower = timerKey(nil, s.earliest, "")
	}
	s.earliest = math.MaxInt64
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{diskTimer + 1}})
	if err != nil {
		s.failed("read timers", err)
		return
	}
	b := s.db.NewBatch()
	for it.First(); it.Valid(); it.Next() {
		at := timerAt(it.Key())
		if at > upTo || len(s.due) == dueBatch {
			s.earliest = at
			break
		}
		s.due = append(s.due, timer{at: at, id: string(it.Key()[9:])})
		if err := b.Delete(it.Key(), nil); err != nil {
			s.failed("delete timers", err)
		}
		// The next key after this one.
		s.resume = append(append(s.resume[:0], it.Key()...), 0)
	}
	if err := it.Close(); err != nil {
		s.failed("read timers", err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		s.failed("delete timers", err)
	}
	if err := b.Close(); err != nil {
		s.failed("delete timers", err)
	}
	s.timers -= len(s.due)
}

func (s *diskStore) Timers() int { return s.timers + len(s.due) - s.dueNext }

// Persisted writes the changelog encoding of a group to Pebble, with
// its changelog generation: a cached group is clean then, and may be
// evicted without encoding it again. A group Each or Sweep read from
// Pebble is written for its new generation.
func (s *diskStore) Persisted(ks *keyState, value []byte) {
	s.write(ks, value)
	if e := s.cache[ks.id]; e != nil && e.ks == ks {
		e.clean, e.onDisk = true, true
	}
}

// Sweep visits the groups in Pebble in key order from where the last
// sweep stopped, round to the start, and calls fn for those of a
// generation below stale. A cached group is visited as cached.
func (s *diskStore) Sweep(visits int, stale uint64, fn func(ks *keyState)) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{diskGroup}, UpperBound: []byte{diskGroup + 1}})
	if err != nil {
		s.failed("sweep groups", err)
		return
	}
	valid, wrapped := it.SeekGE(append(s.hand, 0)), false
	for visits = min(visits, s.groups); visits > 0; visits-- {
		if !valid {
			if wrapped || !it.First() {
				break
			}
			wrapped, valid = true, true
		}
		id := it.Key()[1:]
		if e := s.cache[string(id)]; e != nil {
			if e.ks.gen < stale {
				fn(e.ks)
			}
		} else if _, gen, _, ok := splitDiskGroup(it.Value()); ok && gen < stale {
			ks, err := s.decode(string(id), it.Value())
			if err != nil {
				s.failed("decode group", err)
				break
			}
			fn(ks)
		}
		s.hand = append(s.hand[:0], it.Key()...)
		valid = it.Next()
	}
	if err := it.Close(); err != nil {
		s.failed("sweep groups", err)
	}
}

// AppendPending appends the changelog encoding of group id if it was
// evicted with changes not yet flushed, and counts them as flushed.
func (s *diskStore) AppendPending(dst []byte, id string) ([]byte, bool) {
	enc, ok := s.pending[id]
	if !ok {
		return dst, false
	}
	delete(s.pending, id)
	if enc != nil {
		return append(dst, enc...), true
	}
	s.key = append(append(s.key[:0], diskGroup), id...)
	v, closer, err := s.db.Get(s.key)
	if err != nil {
		s.failed("read group", err)
		return dst, false
	}
	defer closer.Close()
	if _, _, enc, ok := splitDiskGroup(v); ok {
		return append(dst, enc...), true
	}
	s.failed("read group", errShort)
	return dst, false
}

// Flushed forgets the pending changes: the flush wrote them all.
func (s *diskStore) Flushed() {
	clear(s.pending)
	s.pendingBytes, s.pendingBuf = 0, arena{}
	s.evict()
}

// Close closes the database and removes its directory; closing again
// does nothing.
func (s *diskStore) Close() error {
	if s.cache == nil {
		return nil
	}
	err := s.db.Close()
	if rerr := os.RemoveAll(s.dir); err == nil && rerr != nil {
		err = fmt.Errorf("remove state store: %w", rerr)
	}
	s.cache = nil
	return err
}

// entryList is an intrusive doubly linked list of cache entries.
type entryList struct{ root entry }

func (l *entryList) init() { l.root.next, l.root.prev = &l.root, &l.root }

func (l *entryList) pushFront(e *entry) {
	e.prev, e.next = &l.root, l.root.next
	l.root.next.prev = e
	l.root.next = e
}

func (l *entryList) remove(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (l *entryList) front() *entry {
	if l.root.next == &l.root {
		return nil
	}
	return l.root.next
}

func (l *entryList) back() *entry {
	if l.root.prev == &l.root {
		return nil
	}
	return l.root.prev
}
