// Package sink stores window results. The Feed reads the result topics
// (read_committed) into the SQLite store, writing each batch of rows and
// the offsets it consumed in one SQLite transaction and seeking to those
// offsets on start, so each final result is stored exactly once whatever
// crashes. The store answers the results API's queries.
package sink
