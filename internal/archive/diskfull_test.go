package archive

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pulsehq/pulse/internal/checkfor"
	"github.com/pulsehq/pulse/internal/tmpfs"
)

// TestDiskFull archives into a 4 MiB file system that a file fills up:
// archiving stops with a metric, and once the file is gone it resumes
// without a gap or a duplicate.
func TestDiskFull(t *testing.T) {
	dir := tmpfs.Mount(t, "4m")
	opts := cluster(t)
	st, err := NewLocal(filepath.Join(dir, "archive"))
	if err != nil {
		t.Fatal(err)
	}
	in := cityEvents(1000, false, 6)
	produce(t, opts, "city", in)
	a, stop := start(t, Config{Sources: []Source{citySource}, Kafka: opts, Store: st, Roll: Roll{Rows: 300, Age: 50 * time.Millisecond}})
	checkfor.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error { return exactlyOnce(readArrow(t, st, "city"), in) })

	filler := filepath.Join(dir, "filler")
	fill(t, filler, dir)
	more := cityEvents(3000, false, 7)
	produce(t, opts, "city", more)
	in = append(in, more...)
	checkfor.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if counter(a.m.failing) != 1 {
			return fmt.Errorf("pulse_archive_failing = %v on a full disk", counter(a.m.failing))
		}
		return nil
	})
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	checkfor.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		if counter(a.m.failing) != 0 {
			return fmt.Errorf("pulse_archive_failing still %v", counter(a.m.failing))
		}
		return exactlyOnce(readArrow(t, st, "city"), in)
	})
	stop()
	checkExactlyOnce(t, readArrow(t, st, "city"), in)
	checkFiles(t, st, "city", 122_880)
	if ents, _ := os.ReadDir(st.SpoolDir()); len(ents) != 0 {
		t.Errorf("spool holds %d files after the fault", len(ents))
	}
}

// fill writes path until the file system of dir has no room left.
func fill(t *testing.T, path, dir string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if free := fs.Bavail * uint64(fs.Bsize); free > 4096 {
		t.Fatalf("%d bytes still free", free)
	}
}
