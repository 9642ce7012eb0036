// Package bus creates the franz-go Kafka clients every Pulse stage uses and
// manages topics (creates them, and with a Keeper creates them again when a
// Kafka client deleted one): one Kafka API whether the broker is embedded
// or a cluster.
package bus
