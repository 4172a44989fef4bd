package jsonval_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/internal/jsonval"
	"github.com/lakehouse/lake/internal/rowfmt"
)

// Strings are the case the three renderers used to disagree on (encoding/json escaped <, > and
// &; the checkpoint renderer left U+2028 as is).
var stringCases = []struct{ in, want string }{
	{"plain", `"plain"`},
	{"a\"b\\c", `"a\"b\\c"`},
	{"\n\r\t\x00\x1f", `"\n\r\t\u0000\u001f"`},
	{"<&>", `"<&>"`},
	{"grüße 日本 🙂", `"grüße 日本 🙂"`},
	{"bad\xffutf8", `"bad\ufffdutf8"`},
	{"line\u2028sep\u2029", `"line\u2028sep\u2029"`},
}

func TestAppendString(t *testing.T) {
	for _, c := range stringCases {
		got := string(jsonval.AppendString(nil, c.in))
		if got != c.want {
			t.Errorf("AppendString(%q) = %s, want %s", c.in, got, c.want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("AppendString(%q) = %s: not JSON: %v", c.in, got, err)
		}
	}
}

func TestAppendFloat(t *testing.T) {
	for _, c := range []struct {
		f    float64
		bits int
		want string
	}{
		{1.5, 64, "1.5"}, {1e6, 64, "1000000"}, {1e21, 64, "1e+21"}, {1e-7, 64, "1e-7"}, {0.1, 32, "0.1"},
		{math.Copysign(0, -1), 64, "-0"}, {math.NaN(), 64, `"NaN"`}, {math.Inf(1), 64, `"Infinity"`}, {math.Inf(-1), 32, `"-Infinity"`},
	} {
		if got := string(jsonval.AppendFloat(nil, c.f, c.bits)); got != c.want {
			t.Errorf("AppendFloat(%v, %d) = %s, want %s", c.f, c.bits, got, c.want)
		}
	}
}

func TestAppendStatsTimestamp(t *testing.T) {
	ts := time.Date(2022, 10, 24, 22, 59, 36, 177_000_000, time.UTC)
	for _, c := range []struct {
		t    time.Time
		utc  bool
		want string
	}{
		{ts, true, `"2022-10-24T22:59:36.177Z"`},
		{ts, false, `"2022-10-24T22:59:36.177"`},
		{ts.Add(1 * time.Microsecond), true, `"2022-10-24T22:59:36.177001Z"`},
		{ts.Add(1), true, `"2022-10-24T22:59:36.177000001Z"`},
		{ts.In(time.FixedZone("x", 3600)), true, `"2022-10-24T22:59:36.177Z"`},
	} {
		if got := string(jsonval.AppendStatsTimestamp(nil, c.t, c.utc)); got != c.want {
			t.Errorf("AppendStatsTimestamp(%v, %v) = %s, want %s", c.t, c.utc, got, c.want)
		}
	}
	if got := string(jsonval.AppendDate(nil, -1)); got != `"1969-12-31"` {
		t.Errorf("AppendDate(-1) = %s", got)
	}
}

func TestAppendDecimal(t *testing.T) {
	for _, c := range []struct {
		v     int64
		scale int32
		want  string
	}{{-5678, 3, "-5.678"}, {1, 5, "0.00001"}, {12, 0, "12"}, {12, -2, "1200"}, {math.MinInt64, 2, "-92233720368547758.08"}} {
		if got := string(jsonval.AppendDecimal128(nil, decimal128.FromI64(c.v), c.scale)); got != c.want {
			t.Errorf("AppendDecimal128(%d, %d) = %s, want %s", c.v, c.scale, got, c.want)
		}
	}
}

// TestRowfmtAgrees holds `lake cat`'s jsonl to the same strings and floats (txlog's stats_parsed
// renderer has the same check in txlog; writer/stats calls jsonval directly).
func TestRowfmtAgrees(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	sb := array.NewStringBuilder(mem)
	for _, c := range stringCases {
		sb.Append(c.in)
	}
	strs := sb.NewArray()
	defer strs.Release()
	for i, c := range stringCases {
		if got := string(rowfmt.AppendJSON(nil, strs, i)); got != c.want {
			t.Errorf("rowfmt string %q = %s, want %s", c.in, got, c.want)
		}
	}
	fb := array.NewFloat64Builder(mem)
	fs := []float64{1e6, 1e-7, math.NaN(), math.Inf(-1)}
	fb.AppendValues(fs, nil)
	floats := fb.NewArray()
	defer floats.Release()
	for i, f := range fs {
		if got, want := string(rowfmt.AppendJSON(nil, floats, i)), string(jsonval.AppendFloat(nil, f, 64)); got != want {
			t.Errorf("rowfmt float %v = %s, want %s", f, got, want)
		}
	}
}
