// Package broker runs the embedded single-node Kafka-protocol broker
// (franz-go's kfake) that Pulse starts when no external cluster is given.
// It persists topics, records and consumer offsets under a data directory
// and listens on a TCP address so any Kafka client can use it.
package broker
