// Package backoff is Pulse's one retry helper: capped exponential backoff
// with jitter, for every loop that tries again after a failure (the setup
// of topics while Kafka does not answer, a pipeline stage or the SQLite
// sink starting again after an error).
//
// The wait doubles from Min with each failure up to Max, and each wait is
// drawn at random from its upper half, so that many clients failing
// together do not retry in step. A success resets it to Min.
package backoff
