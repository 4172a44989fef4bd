package units

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
)

func TestFloorDiv(t *testing.T) {
	for _, c := range []struct{ a, b, want int64 }{
		{7, 2, 3}, {-7, 2, -4}, {-8, 2, -4}, {0, 5, 0}, {7, -2, -4}, {-7, -2, 3}, {-1, 86400, -1},
	} {
		if got := FloorDiv(c.a, c.b); got != c.want {
			t.Errorf("FloorDiv(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestMicros(t *testing.T) {
	for _, c := range []struct {
		v    int64
		u    arrow.TimeUnit
		want int64
	}{
		{2, arrow.Second, 2_000_000}, {3, arrow.Millisecond, 3000}, {4, arrow.Microsecond, 4},
		{1999, arrow.Nanosecond, 1}, {-1, arrow.Nanosecond, -1}, {-1000, arrow.Nanosecond, -1},
	} {
		if got := Micros(c.v, c.u); got != c.want {
			t.Errorf("Micros(%d, %v) = %d, want %d", c.v, c.u, got, c.want)
		}
	}
}
