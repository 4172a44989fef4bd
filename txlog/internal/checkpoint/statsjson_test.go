package checkpoint

import (
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/internal/jsonval"
	"github.com/lakehouse/lake/internal/rowfmt"
)

// TestStatsParsedJSONAgrees holds the JSON that stats_parsed renders to the renderer `lake cat`
// and the writer's stats use (internal/jsonval): control characters, non-ASCII, invalid UTF-8,
// NaN and infinities, timestamps.
func TestStatsParsedJSONAgrees(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)

	strs := []string{"a\"b\\", "\n\r\t\x01", "<&>", "grüße 日本", "bad\xff", "x\u2028y"}
	sb := array.NewStringBuilder(mem)
	sb.AppendValues(strs, nil)
	sa := sb.NewArray()
	defer sa.Release()
	sw := pqJSONCompile(sa)
	for i, s := range strs {
		got := string(sw(nil, i))
		if want := string(jsonval.AppendString(nil, s)); got != want {
			t.Errorf("stats_parsed string %q = %s, want %s", s, got, want)
		}
		if cat := string(rowfmt.AppendJSON(nil, sa, i)); got != cat {
			t.Errorf("stats_parsed string %q = %s, lake cat writes %s", s, got, cat)
		}
	}

	floats := []float64{1.5, 1e6, 1e-7, 1e300, math.NaN(), math.Inf(1), math.Inf(-1)}
	fb := array.NewFloat64Builder(mem)
	fb.AppendValues(floats, nil)
	fa := fb.NewArray()
	defer fa.Release()
	fw := pqJSONCompile(fa)
	for i, f := range floats {
		if got, want := string(fw(nil, i)), string(jsonval.AppendFloat(nil, f, 64)); got != want {
			t.Errorf("stats_parsed float %v = %s, want %s", f, got, want)
		}
	}

	ts := time.Date(2022, 10, 24, 22, 59, 36, 177_000_000, time.UTC)
	tb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
	tb.Append(arrow.Timestamp(ts.UnixMicro()))
	tb.Append(arrow.Timestamp(ts.UnixMicro() + 1))
	ta := tb.NewArray()
	defer ta.Release()
	tw := pqJSONCompile(ta)
	for i, want := range []string{`"2022-10-24T22:59:36.177Z"`, `"2022-10-24T22:59:36.177001Z"`} {
		if got := string(tw(nil, i)); got != want {
			t.Errorf("stats_parsed timestamp %d = %s, want %s", i, got, want)
		}
	}
	sb.Release()
	fb.Release()
	tb.Release()
}
