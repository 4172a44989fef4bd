package partval

import (
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/decimal128"

	"github.com/lakehouse/lake/txlog"
)

func sp(s string) *string { return &s }

func TestFormat(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)
	dec := &txlog.DecimalType{Precision: 5, Scale: 2}
	tests := []struct {
		v    any
		t    txlog.DataType
		want *string
	}{
		{nil, txlog.String, nil},
		{"", txlog.String, nil}, // the protocol: "" is a null for every type
		{"A/A", txlog.String, sp("A/A")},
		{int64(-9223372036854775808), txlog.Long, sp("-9223372036854775808")},
		{int32(2021), txlog.Integer, sp("2021")},
		{7, txlog.Integer, sp("7")},
		{int16(-3), txlog.Short, sp("-3")},
		{int8(127), txlog.Byte, sp("127")},
		{float32(1.5), txlog.Float, sp("1.5")},
		{float64(10), txlog.Double, sp("10.0")},
		{float64(1e10), txlog.Double, sp("1.0E10")},
		{float64(1.5e-4), txlog.Double, sp("1.5E-4")},
		{math.NaN(), txlog.Double, sp("NaN")},
		{math.Inf(-1), txlog.Double, sp("-Infinity")},
		{true, txlog.Boolean, sp("true")},
		{[]byte{1, 2, 3}, txlog.Binary, sp("\x01\x02\x03")},
		{int32(19724), txlog.Date, sp("2024-01-02")},
		{int32(-1), txlog.Date, sp("1969-12-31")},
		{arrow.Date32(0), txlog.Date, sp("1970-01-01")},
		{ts, txlog.Date, sp("2024-01-02")},
		{ts, txlog.Timestamp, sp("2024-01-02T03:04:05.123456Z")},
		{ts.In(time.FixedZone("x", 3600)), txlog.Timestamp, sp("2024-01-02T03:04:05.123456Z")},
		{arrow.Timestamp(ts.UnixMicro()), txlog.Timestamp, sp("2024-01-02T03:04:05.123456Z")},
		{ts, txlog.TimestampNTZ, sp("2024-01-02 03:04:05.123456")},
		{ts.Truncate(time.Second), txlog.TimestampNTZ, sp("2024-01-02 03:04:05")},
		{"1.5", dec, sp("1.50")},
		{"-0.5", dec, sp("-0.50")},
		{"123", dec, sp("123.00")},
		{decimal128.FromI64(-1234), dec, sp("-12.34")},
		{big.NewInt(5), dec, sp("0.05")},
	}
	for _, tc := range tests {
		got, err := Format(tc.v, tc.t)
		if err != nil {
			t.Errorf("Format(%v, %s): %v", tc.v, tc.t.TypeName(), err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Format(%v, %s) = %v, want %v", tc.v, tc.t.TypeName(), deref(got), deref(tc.want))
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestFormatErrors(t *testing.T) {
	tests := []struct {
		v    any
		t    txlog.DataType
		want string
	}{
		{300, txlog.Byte, "out of range"},
		{"x", txlog.Long, "wrong Go type"},
		{"1234.5", &txlog.DecimalType{Precision: 4, Scale: 1}, "does not fit"},
		{"1.234", &txlog.DecimalType{Precision: 10, Scale: 2}, "fractional digits"},
		{"a", &txlog.ArrayType{ElementType: txlog.String}, "cannot be a partition column"},
		{"a", txlog.Variant, "cannot be a partition column"},
	}
	for _, tc := range tests {
		_, err := Format(tc.v, tc.t)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Format(%v, %s) error = %v, want %q", tc.v, tc.t.TypeName(), err, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)
	tests := []struct {
		s    *string
		t    txlog.DataType
		want any
	}{
		{nil, txlog.Long, nil},
		{sp(""), txlog.Long, nil},
		{sp(""), txlog.String, nil},
		{sp("A/A"), txlog.String, "A/A"},
		{sp("2021"), txlog.Long, int64(2021)},
		{sp("2021.0"), txlog.Long, int64(2021)}, // corpus: partition-type-primitives
		{sp("2021.0"), txlog.Integer, int32(2021)},
		{sp("1.0E3"), txlog.Short, int16(1000)},
		{sp("9223372036854775807"), txlog.Long, int64(math.MaxInt64)},
		{sp("-128"), txlog.Byte, int8(-128)},
		{sp("9.9"), txlog.Double, 9.9},
		{sp("10.0"), txlog.Float, float32(10)},
		{sp("Infinity"), txlog.Double, math.Inf(1)},
		{sp("true"), txlog.Boolean, true},
		{sp("False"), txlog.Boolean, false},
		{sp("\x01\x02"), txlog.Binary, []byte{1, 2}},
		{sp("2024-01-02"), txlog.Date, int32(19724)},
		{sp("1969-12-31"), txlog.Date, int32(-1)},
		{sp("2024-01-02 03:04:05.123456"), txlog.Timestamp, ts},
		{sp("2024-01-02T03:04:05.123456Z"), txlog.Timestamp, ts},
		{sp("2024-01-02T04:04:05.123456+01:00"), txlog.Timestamp, ts},
		{sp("2024-01-02 03:04:05"), txlog.TimestampNTZ, ts.Truncate(time.Second)},
		{sp("2024-01-02T03:04:05.123456"), txlog.TimestampNTZ, ts},
		{sp("1.5"), &txlog.DecimalType{Precision: 5, Scale: 2}, "1.50"},
		{sp("1E+1"), &txlog.DecimalType{Precision: 5, Scale: 0}, "10"},
	}
	for _, tc := range tests {
		got, err := Parse(tc.s, tc.t)
		if err != nil {
			t.Errorf("Parse(%q, %s): %v", deref(tc.s), tc.t.TypeName(), err)
			continue
		}
		if tt, ok := got.(time.Time); ok {
			if !tt.Equal(tc.want.(time.Time)) || tt.Location() != time.UTC {
				t.Errorf("Parse(%q, %s) = %v, want %v", deref(tc.s), tc.t.TypeName(), got, tc.want)
			}
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q, %s) = %#v, want %#v", deref(tc.s), tc.t.TypeName(), got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		s string
		t txlog.DataType
	}{
		{"abc", txlog.Long},
		{"2021.5", txlog.Long},
		{"128", txlog.Byte},
		{"99999999999", txlog.Integer},
		{"yes", txlog.Boolean},
		{"2024-13-01", txlog.Date},
		{"yesterday", txlog.Timestamp},
		{"x", txlog.Double},
		{"1.234", &txlog.DecimalType{Precision: 10, Scale: 2}},
	}
	for _, tc := range tests {
		v, err := Parse(&tc.s, tc.t)
		if err == nil {
			t.Errorf("Parse(%q, %s) = %v, want an error", tc.s, tc.t.TypeName(), v)
			continue
		}
		if !strings.Contains(err.Error(), tc.s) || !strings.Contains(err.Error(), tc.t.TypeName()) {
			t.Errorf("Parse(%q, %s) error %q does not name the value and the type", tc.s, tc.t.TypeName(), err)
		}
	}
}

// Every value Format writes, Parse reads back as the same value.
func TestFormatParseRoundTrip(t *testing.T) {
	ts := time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	dec := &txlog.DecimalType{Precision: 38, Scale: 10}
	values := []struct {
		v any
		t txlog.DataType
	}{
		{"héllo wörld/=%", txlog.String},
		{int64(math.MinInt64), txlog.Long},
		{int32(math.MaxInt32), txlog.Integer},
		{int16(math.MinInt16), txlog.Short},
		{int8(-1), txlog.Byte},
		{float32(3.4028235e38), txlog.Float},
		{float32(1e-7), txlog.Float},
		{float64(5e-324), txlog.Double},
		{float64(-123456789.125), txlog.Double},
		{false, txlog.Boolean},
		{[]byte{0, 0xff, '%'}, txlog.Binary},
		{int32(-719162), txlog.Date}, // 0001-01-01
		{int32(2932896), txlog.Date}, // 9999-12-31
		{ts, txlog.Timestamp},
		{ts, txlog.TimestampNTZ},
		{"-1234567890123456789012345678.0123456789", dec},
	}
	for _, tc := range values {
		s, err := Format(tc.v, tc.t)
		if err != nil {
			t.Fatalf("Format(%v, %s): %v", tc.v, tc.t.TypeName(), err)
		}
		got, err := Parse(s, tc.t)
		if err != nil {
			t.Fatalf("Parse(%q, %s): %v", *s, tc.t.TypeName(), err)
		}
		if tt, ok := got.(time.Time); ok {
			if !tt.Equal(tc.v.(time.Time)) {
				t.Errorf("%s: %v -> %q -> %v", tc.t.TypeName(), tc.v, *s, got)
			}
			continue
		}
		if !reflect.DeepEqual(got, tc.v) {
			t.Errorf("%s: %#v -> %q -> %#v", tc.t.TypeName(), tc.v, *s, got)
		}
	}
}

func TestEscapePathSegment(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2024-01-01", "2024-01-01"},
		{"A/A", "A%2FA"}, // corpus: delta-0.8.0-special-partition
		{"B B", "B B"},   // Spark keeps spaces (on Linux)
		{"a=b:c", "a%3Db%3Ac"},
		{"100%", "100%25"},
		{"\"#'*?\\{[]^\x7f", "%22%23%27%2A%3F%5C%7B%5B%5D%5E%7F"},
		{"tab\there\nnl", "tab%09here%0Anl"},
		{"\x00", "%00"},
		{"日本/語", "日本%2F語"},
		{"\xff\xfe", "%FF%FE"},
		{"}<>|!", "}<>|!"},
	}
	for _, tc := range tests {
		if got := EscapePathSegment(tc.in); got != tc.want {
			t.Errorf("EscapePathSegment(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := UnescapePathSegment(tc.want); got != tc.in {
			t.Errorf("UnescapePathSegment(%q) = %q, want %q", tc.want, got, tc.in)
		}
	}
	// Other writers' escapes decode too; malformed ones stay.
	for in, want := range map[string]string{"B%20B": "B B", "a%2fb": "a/b", "100%": "100%", "%zz%4": "%zz%4", "%": "%"} {
		if got := UnescapePathSegment(in); got != want {
			t.Errorf("UnescapePathSegment(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPartitionSegmentAndURI(t *testing.T) {
	if got := PartitionSegment("x", sp("A/A")); got != "x=A%2FA" {
		t.Errorf("PartitionSegment = %q", got)
	}
	if got := PartitionSegment("k", nil); got != "k="+NullPartition {
		t.Errorf("PartitionSegment(null) = %q", got)
	}
	if got := PartitionSegment("k", sp("")); got != "k="+NullPartition {
		t.Errorf("PartitionSegment(empty) = %q", got)
	}
	key := "x=A%2FA/y=B B/part-00000-1.c000.zstd.parquet"
	uri := EncodeURIPath(key)
	if want := "x=A%252FA/y=B%20B/part-00000-1.c000.zstd.parquet"; uri != want {
		t.Errorf("EncodeURIPath = %q, want %q", uri, want)
	}
	if got := DecodeURIPath(uri); got != key {
		t.Errorf("DecodeURIPath = %q, want %q", got, key)
	}
	if got := DecodeURIPath("x=B%2520B/part-1.parquet"); got != "x=B%20B/part-1.parquet" {
		t.Errorf("DecodeURIPath(corpus) = %q", got)
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "A/A", "B B", "100%", "%2F", "日本", "\x00\xff", "a=b", "__HIVE_DEFAULT_PARTITION__"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := EscapePathSegment(s)
		if got := UnescapePathSegment(e); got != s {
			t.Fatalf("UnescapePathSegment(EscapePathSegment(%q)) = %q (escaped %q)", s, got, e)
		}
		if !utf8.ValidString(e) {
			t.Fatalf("EscapePathSegment(%q) = %q is not valid UTF-8", s, e)
		}
		if strings.ContainsAny(e, "/=:\x00\n") {
			t.Fatalf("EscapePathSegment(%q) = %q keeps a separator or control character", s, e)
		}
		u := EncodeURIPath(s)
		if got := DecodeURIPath(u); got != s {
			t.Fatalf("DecodeURIPath(EncodeURIPath(%q)) = %q (encoded %q)", s, got, u)
		}
	})
}

var fuzzTypes = []txlog.DataType{
	txlog.String, txlog.Long, txlog.Integer, txlog.Short, txlog.Byte, txlog.Float, txlog.Double,
	txlog.Boolean, txlog.Binary, txlog.Date, txlog.Timestamp, txlog.TimestampNTZ,
	&txlog.DecimalType{Precision: 10, Scale: 2}, &txlog.DecimalType{Precision: 38, Scale: 0},
}

// FuzzParse: Parse never panics, and whatever it accepts, Format writes in a form Parse reads
// back as the same value (the canonical form is a fixed point).
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "2021", "2021.0", "1.0E3", "-0.0", "NaN", "true", "2024-01-02",
		"2024-01-02 03:04:05.123456", "2024-01-02T03:04:05Z", "12.30", "1e400", "\x01\x02"} {
		for i := range fuzzTypes {
			f.Add(s, uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, s string, ti uint8) {
		typ := fuzzTypes[int(ti)%len(fuzzTypes)]
		v, err := Parse(&s, typ)
		if err != nil || v == nil {
			return
		}
		out, err := Format(v, typ)
		if err != nil {
			t.Fatalf("Format(Parse(%q, %s) = %#v): %v", s, typ.TypeName(), v, err)
		}
		v2, err := Parse(out, typ)
		if err != nil {
			t.Fatalf("Parse(Format(%#v)) = Parse(%q, %s): %v", v, deref(out), typ.TypeName(), err)
		}
		if !equalValue(v, v2) {
			t.Fatalf("%s: %q -> %#v -> %q -> %#v", typ.TypeName(), s, v, deref(out), v2)
		}
		out2, _ := Format(v2, typ)
		if deref(out) != deref(out2) {
			t.Fatalf("%s: canonical form not stable: %q then %q", typ.TypeName(), deref(out), deref(out2))
		}
	})
}

func equalValue(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || (math.IsNaN(x) && math.IsNaN(y)))
	case float32:
		y, ok := b.(float32)
		return ok && (x == y || (x != x && y != y))
	}
	return reflect.DeepEqual(a, b)
}
