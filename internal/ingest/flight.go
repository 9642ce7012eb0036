package ingest

import (
	"context"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

// errUnconfirmed wraps context.DeadlineExceeded: the broker did not answer.
var errUnconfirmed = fmt.Errorf("the broker did not confirm it in time; it may or may not be stored: %w", context.DeadlineExceeded)

// flight is one request's records on their way to the broker. Its promise
// is one function for all of them, finding a record's index from its
// address in recs; the request's reservation is released when the last
// record is acknowledged or failed.
type flight struct {
	recs    []kgo.Record
	res     reservation
	mu      sync.Mutex
	errs    []error
	acked   []bool
	pending int
	done    chan struct{}
}

func (f *flight) promise(r *kgo.Record, err error) {
	i := int((uintptr(unsafe.Pointer(r)) - uintptr(unsafe.Pointer(unsafe.SliceData(f.recs)))) / unsafe.Sizeof(kgo.Record{}))
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.errs[i] = fmt.Errorf("not stored, the broker did not acknowledge it: %w", err)
	}
	f.acked[i] = true
	if f.pending--; f.pending == 0 {
		f.res.done()
		close(f.done)
	}
}

// send produces recs and waits for every acknowledgement, at most
// ProduceTimeout plus a grace period. Records still buffered at the
// deadline are failed by the client; a record already sent keeps waiting
// for its outcome inside the client (to keep idempotence), and is reported
// as unconfirmed if that takes longer than the grace period. complete is
// false in that case; f's reservation is released only when the client is
// done with every record.
func (h *Handler) send(rctx context.Context, f *flight, recs []kgo.Record) (errs []error, complete bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(rctx), h.cfg.ProduceTimeout)
	defer cancel()
	n := len(recs)
	f.recs = recs
	f.errs = resize(f.errs, n)
	f.acked = resize(f.acked, n)
	f.pending = n
	f.done = make(chan struct{})
	if n == 0 {
		f.res.done()
		return f.errs, true
	}
	promise := f.promise
	for i := range recs {
		h.cfg.Client.Produce(ctx, &recs[i], promise)
	}
	grace := time.NewTimer(h.cfg.ProduceTimeout + 2*time.Second)
	defer grace.Stop()
	select {
	case <-f.done:
		return f.errs, true
	case <-grace.C:
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]error, n)
	for i := range recs {
		out[i] = f.errs[i]
		if !f.acked[i] {
			out[i] = errUnconfirmed
		}
	}
	return out, f.pending == 0
}

// resize returns s with length n and zero values, reusing its array.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}
