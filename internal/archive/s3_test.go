package archive

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/pulsehq/pulse/internal/checkfor"
)

// flaky fails every request but each third with 500 while failing is
// set.
type flaky struct {
	h       http.Handler
	failing atomic.Bool
	n       atomic.Int64
	failed  atomic.Int64
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.failing.Load() && f.n.Add(1)%3 != 0 {
		f.failed.Add(1)
		http.Error(w, "<Error><Code>InternalError</Code><Message>injected</Message></Error>", http.StatusInternalServerError)
		return
	}
	f.h.ServeHTTP(w, r)
}

// s3Server starts an S3-compatible server (gofakes3, in memory) with
// bucket pulse.
func s3Server(t *testing.T) (*flaky, string) {
	t.Helper()
	be := s3mem.New()
	if err := be.CreateBucket("pulse"); err != nil {
		t.Fatal(err)
	}
	f := &flaky{h: gofakes3.New(be).Server()}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func s3Store(t *testing.T, endpoint, url string) *S3Store {
	t.Helper()
	st, err := NewS3(S3Config{URL: url, Endpoint: endpoint, AccessKey: "pulse", SecretKey: "pulse-secret", Spool: t.TempDir(), MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestS3Faults archives into an S3-compatible server that fails two
// requests in three for a while: archiving stops with a metric, and
// resumes without a gap or a duplicate once the server works again.
func TestS3Faults(t *testing.T) {
	opts := cluster(t)
	srv, endpoint := s3Server(t)
	st := s3Store(t, endpoint, "s3://pulse/history/raw")
	in := cityEvents(1500, true, 4)
	produce(t, opts, "city", in)
	a, stop := start(t, Config{Sources: []Source{citySource}, Kafka: opts, Store: st, Roll: Roll{Rows: 200, Age: 50 * time.Millisecond}, Workers: 3})
	checkfor.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error { return exactlyOnce(readArrow(t, st, "city"), in) })

	srv.failing.Store(true)
	more := cityEvents(1500, true, 5)
	produce(t, opts, "city", more)
	in = append(in, more...)
	checkfor.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if counter(a.m.failing) != 1 || counter(a.m.errors) < 2 {
			return fmt.Errorf("pulse_archive_failing %v, errors %v after %d failed requests", counter(a.m.failing), counter(a.m.errors), srv.failed.Load())
		}
		return nil
	})
	srv.failing.Store(false)
	checkfor.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		if counter(a.m.failing) != 0 {
			return fmt.Errorf("pulse_archive_failing still %v", counter(a.m.failing))
		}
		return exactlyOnce(readArrow(t, st, "city"), in)
	})
	stop()
	checkExactlyOnce(t, readArrow(t, st, "city"), in)
	checkFiles(t, st, "city", 122_880)
}

// TestS3MissingBucket: a bucket that does not exist stops archiving with
// an error that says so.
func TestS3MissingBucket(t *testing.T) {
	_, endpoint := s3Server(t)
	st := s3Store(t, endpoint, "s3://nope/x")
	err := st.checkBucket(t.Context())
	if err == nil || err.Error() != "s3://nope/x/: "+errNoBucket.Error() {
		t.Fatalf("checkBucket = %v, want the bucket named and how to fix it", err)
	}
}
