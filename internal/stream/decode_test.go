package stream

import (
	"reflect"
	"testing"
)

// TestCityFastPath checks that a city-schema pipeline, which fills its
// slots from the validated reading instead of a second pass over the JSON,
// decodes exactly what the general path reads from the same JSON.
func TestCityFastPath(t *testing.T) {
	plan := testPlan(t, `
name: c
source: {topic: city, schema: city, key: sensor_id, time: {field: ts}}
outputs:
  - name: o
    group_by: [zone, kind]
    window: {tumbling: 1m}
    aggregates: {n: count(), s: avg(speed_kmh), p: max(pm25), f: first(sensor_id), x: sum(extra)}
`)
	general := *plan
	general.Source.Schema = ""
	fast, slow := NewDecoder(plan), NewDecoder(&general)
	if fast.city == nil || !fast.visit {
		t.Fatalf("city decoder: city %v, visit %v (extra is not a reading field)", fast.city != nil, fast.visit)
	}
	for _, in := range []string{
		cityJSON,
		`{"sensor_id":"A-1","kind":"air","zone":"z9","ts":"2026-01-01T00:00:00Z","pm25":3.5,"extra":2}`,
		`{"zone":"first","sensor_id":"W","kind":"weather","ts":1767225600000,"zone":"last","temp_c":-3}`,
	} {
		var a, b Record
		if err := fast.Decode([]byte(in), &a); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if err := slow.Decode([]byte(in), &b); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s:\nfast    %+v\ngeneral %+v", in, a, b)
		}
	}
	// Without fields outside the reading, the JSON is not visited again.
	if city := NewDecoder(testPlan(t, "")); city.visit {
		t.Error("the city pipeline's decoder visits the JSON twice")
	}
}
