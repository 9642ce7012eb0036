package stream

import "testing"

// FuzzDecode feeds arbitrary records to the decoder of a pipeline with a
// where filter and derived fields: it must never panic, and a decoded
// record has one value per slot.
func FuzzDecode(f *testing.F) {
	plan := testPlan(f, `
name: f
source: {topic: t, key: user, time: {field: at}}
where: 'page != "/health"'
derive:
  section: 'page.split("/")[1]'
outputs:
  - name: o
    group_by: [section]
    window: {tumbling: 1m}
    aggregates: {n: count(), d: count_distinct(user), p: p99(ms)}
`)
	for _, s := range []string{
		`{"user":"u","at":1767225600000,"page":"/a/b","ms":12}`,
		`{"user":"u","at":"2026-01-01T00:00:00Z","page":"/health"}`,
		`{"user":"u","at":"x"}`, `{"at":1,"page":5}`, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	dec := NewDecoder(plan)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		if err := dec.Decode(data, &r); err == nil && len(r.Vals) != dec.Slots() {
			t.Fatalf("%d values for %d slots", len(r.Vals), dec.Slots())
		}
	})
}
