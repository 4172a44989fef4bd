//go:build unix

package pqdecode

import (
	"syscall"
	"time"
)

// processCPU returns the user+system CPU time of the process so far. The
// benchmarks report it per op next to the wall time, because the wall time
// is unreliable on a loaded machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
