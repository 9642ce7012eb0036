// Package sink stores window results. The SQLite store keeps final and
// checkpointed results together with the pipeline state and the input
// offsets they were computed from, all written in one transaction, so a
// restart resumes exactly after the last checkpoint: nothing lost, nothing
// counted twice.
package sink
