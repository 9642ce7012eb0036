//go:build !race

package stream

// raceOn is set when the tests run with -race, which makes the disk
// store's suite several times slower.
const raceOn = false
