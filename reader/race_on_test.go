//go:build race

package reader_test

// raceEnabled: the race detector slows the corpus's largest table tenfold; its rows are then
// counted, not hashed.
const raceEnabled = true
