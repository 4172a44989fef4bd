//go:build !unix

package pqdecode

import "time"

func processCPU() time.Duration { return 0 }
