package archive

import (
	"testing"
	"time"
)

func TestPartNames(t *testing.T) {
	hour := time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)
	p := Part{Stream: "city", Hour: hour, Partition: 3, From: 120, To: 4500}
	name := p.Name()
	if want := "stream=city/date=2026-12-01/hour=07/p003-00000000000000000120-00000000000000004500.parquet"; name != want {
		t.Fatalf("Name = %s, want %s", name, want)
	}
	got, err := ParsePart("some/prefix/" + name)
	if err != nil || got != p {
		t.Fatalf("ParsePart(%s) = %+v, %v; want %+v", name, got, err, p)
	}
	for _, bad := range []string{
		"stream=city/date=2026-12-01/hour=07/p003-00000000000000000120-00000000000000004500.parquet.tmp",
		"stream=city/date=2026-12-01/hour=24/p003-1-2.parquet",
		"stream=city/date=2026-13-01/hour=07/p003-1-2.parquet",
		"stream=city/date=2026-12-01/hour=07/p003-5-5.parquet",
		"stream=city/date=2026-12-01/hour=07/p003-5.parquet",
		"stream=/date=2026-12-01/hour=07/p003-1-2.parquet",
		"date=2026-12-01/hour=07/p003-1-2.parquet",
		"stream=city/date=2026-12-01/hour=07/x003-1-2.parquet",
		"stream=city/date=2026-12-01/hour=07/p-1-1-2.parquet",
	} {
		if p, err := ParsePart(bad); err == nil {
			t.Errorf("ParsePart(%s) = %+v, want an error", bad, p)
		}
	}
}

func TestHourOf(t *testing.T) {
	for _, c := range []struct {
		ms   int64
		want string
	}{
		{0, "1970-01-01T00:00:00Z"},
		{time.Date(2026, 12, 1, 23, 59, 59, 999e6, time.UTC).UnixMilli(), "2026-12-01T23:00:00Z"},
		{time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC).UnixMilli(), "2026-12-02T00:00:00Z"},
	} {
		if got := HourOf(c.ms).Format(time.RFC3339); got != c.want {
			t.Errorf("HourOf(%d) = %s, want %s", c.ms, got, c.want)
		}
	}
}

// FuzzParsePart: names listed from a bucket are outside input. A name
// that parses must be the name of what it parses to.
func FuzzParsePart(f *testing.F) {
	f.Add("stream=city/date=2026-12-01/hour=07/p003-00000000000000000120-00000000000000004500.parquet")
	f.Add("x/stream=a/date=2000-01-01/hour=00/p000-0-1.parquet")
	f.Add("stream=city/date=2026-12-01/hour=07/p003-1-2.parquet.tmp")
	f.Fuzz(func(t *testing.T, name string) {
		p, err := ParsePart(name)
		if err != nil {
			return
		}
		if p.From < 0 || p.To <= p.From || p.Partition < 0 {
			t.Fatalf("ParsePart(%q) = %+v: bad range", name, p)
		}
		q, err := ParsePart(p.Name())
		if err != nil || q != p {
			t.Fatalf("ParsePart(%q) = %+v, but its Name %q parses to %+v, %v", name, p, p.Name(), q, err)
		}
	})
}
