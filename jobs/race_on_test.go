//go:build race

package jobs

// raceEnabled: the race detector slows the numeric tests ~10x; they shrink under it.
const raceEnabled = true
