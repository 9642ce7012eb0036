// Package bus creates the franz-go Kafka clients every Pulse stage uses and
// manages topics: one Kafka API whether the broker is embedded or a cluster.
package bus
