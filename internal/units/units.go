// Package units holds the small integer arithmetic of times and dates that several packages
// need alike: division rounded down (for dates and times before 1970) and Arrow timestamps in
// microseconds.
package units

import "github.com/apache/arrow-go/v18/arrow"

// FloorDiv is a/b rounded towards minus infinity (Go's / rounds towards zero).
func FloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Micros converts a timestamp of unit u to microseconds (nanoseconds rounded down).
func Micros(v int64, u arrow.TimeUnit) int64 {
	switch u {
	case arrow.Second:
		return v * 1e6
	case arrow.Millisecond:
		return v * 1e3
	case arrow.Nanosecond:
		return FloorDiv(v, 1000)
	}
	return v
}
