package stream

import (
	"time"

	"github.com/pulsehq/pulse/internal/event"
)

// Pipeline describes a running pipeline: the topic it reads and the
// outputs it computes.
type Pipeline struct {
	Name     string
	Topic    string
	KeyField string
	Outputs  []Output
}

// OutputNames lists the names of the pipeline's outputs.
func (p Pipeline) OutputNames() []string {
	names := make([]string, len(p.Outputs))
	for i, o := range p.Outputs {
		names[i] = o.Name
	}
	return names
}

// City is the built-in city pipeline: per-sensor and per-zone one-minute
// tumbling windows over the "city" stream.
func City() Pipeline {
	minute := Tumbling{Size: time.Minute.Milliseconds()}
	return Pipeline{
		Name:     "city",
		Topic:    "city",
		KeyField: "sensor_id",
		Outputs: []Output{
			{Name: "sensor_1m", GroupBy: "sensor_id", Key: func(r *event.Reading) string { return r.SensorID }, Window: minute},
			{Name: "zone_1m", GroupBy: "zone", Key: func(r *event.Reading) string { return r.Zone }, Window: minute},
		},
	}
}
