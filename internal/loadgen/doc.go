// Package loadgen simulates event sources for every Pulse scenario and
// sends their events to a running Pulse over HTTP or straight into Kafka.
//
// The city scenario models a fleet of traffic, air-quality and weather
// sensors spread over zones: rush hours slow traffic and raise counts and
// occupancy, pollution follows the traffic of its zone and is diluted by
// wind and washed out by rain, temperature follows a diurnal cycle with
// per-zone offsets and humidity moves against it. Rare, deliberately
// injected anomalies (a speed collapse, a pm25 spike, a storm cell) give
// detectors something to find; they are still valid readings.
//
// [City] generates readings without any I/O, deterministically for a seed
// and a sequence of clock values, and allocation-free. [Run] paces whole
// batches of them to a target at a fixed rate and reports what happened.
package loadgen
