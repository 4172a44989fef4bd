package reader

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/lakehouse/lake/txlog"
)

// The examples of the protocol's "Deletion Vector Descriptor Schema".
func TestDeletionVectorProtocolExamples(t *testing.T) {
	off := int32(4)
	key, abs, err := dvPath(&txlog.DeletionVector{StorageType: "u", PathOrInlineDv: "ab^-aqEH.-t@S}K{vb[*k^", Offset: &off, SizeInBytes: 40, Cardinality: 6})
	if err != nil || abs {
		t.Fatal(err, abs)
	}
	if want := "ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin"; key != want {
		t.Fatalf("relative path %q, want %q", key, want)
	}
	inline := &txlog.DeletionVector{StorageType: "i", PathOrInlineDv: "wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L", SizeInBytes: 40, Cardinality: 6}
	bm, _, err := loadDV(t.Context(), inline, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := bm.ToArray(), []uint64{3, 4, 7, 11, 18, 29}; !slices.Equal(got, want) {
		t.Fatalf("inline rows %v, want %v", got, want)
	}
	// The same rows in the portable format the protocol specifies.
	body, err := bm.ToBytes()
	if err != nil {
		t.Fatal(err)
	}
	raw := binary.LittleEndian.AppendUint32(nil, dvMagic)
	raw = append(raw, body...)
	bm2, err := decodeBitmap(raw)
	if err != nil || !bm2.Equals(bm) {
		t.Fatalf("portable: %v %v", bm2, err)
	}
	// Corruptions are errors, never panics.
	for _, bad := range [][]byte{raw[:3], raw[:12], append([]byte{1, 2, 3, 4}, raw[4:]...), func() []byte {
		b := slices.Clone(raw)
		binary.LittleEndian.PutUint64(b[4:], 1<<40)
		return b
	}()} {
		if _, err := decodeBitmap(bad); err == nil {
			t.Errorf("decodeBitmap(%x): no error", bad)
		}
	}
	if _, err := decodeZ85("abc"); err == nil {
		t.Error("decodeZ85 of 3 characters: no error")
	}
	if _, _, err := loadDV(t.Context(), &txlog.DeletionVector{StorageType: "x"}, nil); !errors.As(err, new(*txlog.UnsupportedFeatureError)) {
		t.Errorf("unknown storage type: %v", err)
	}
}

func FuzzDecodeBitmap(f *testing.F) {
	raw, _ := decodeZ85("wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L")
	f.Add(raw)
	f.Add(append([]byte{0xd1, 0xd3, 0x39, 0x64}, make([]byte, 12)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = decodeBitmap(b) // must not panic
	})
}

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Filter
	}{
		{"event_date = 2024-01-02", Filter{"event_date", "=", []string{"2024-01-02"}}},
		{"value>=3", Filter{"value", ">=", []string{"3"}}},
		{"value >=3.5", Filter{"value", ">=", []string{"3.5"}}},
		{"a<b", Filter{"a", "<", []string{"b"}}},
		{"a <= -1", Filter{"a", "<=", []string{"-1"}}},
		{"a > 1", Filter{"a", ">", []string{"1"}}},
		{"a != x", Filter{"a", "!=", []string{"x"}}},
		{"a <> x", Filter{"a", "!=", []string{"x"}}},
		{"a == x", Filter{"a", "=", []string{"x"}}},
		{"user_id in (a,b,c)", Filter{"user_id", "in", []string{"a", "b", "c"}}},
		{"user_id IN ( a , 'b,c' , \"d\" )", Filter{"user_id", "in", []string{"a", "b,c", "d"}}},
		{"user_id in('x y')", Filter{"user_id", "in", []string{"x y"}}},
		{"name = 'it''s'", Filter{"name", "=", []string{"it's"}}},
		{"name = ''", Filter{"name", "=", []string{""}}},
		{"`Company Very Short` = BMS", Filter{"Company Very Short", "=", []string{"BMS"}}},
		{"Company Very Short = BMS", Filter{"Company Very Short", "=", []string{"BMS"}}},
		{`"a=b" = 1`, Filter{"a=b", "=", []string{"1"}}},
		{"ts = 2024-01-02 03:04:05", Filter{"ts", "=", []string{"2024-01-02 03:04:05"}}},
		{"x = a in (b)", Filter{"x", "=", []string{"a in (b)"}}},
		{"login = 3", Filter{"login", "=", []string{"3"}}},
	} {
		got, err := ParseFilter(tc.in)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tc.in, err)
			continue
		}
		if got.Column != tc.want.Column || got.Op != tc.want.Op || !slices.Equal(got.Values, tc.want.Values) {
			t.Errorf("ParseFilter(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "value", "= 3", "a =", "a in ()", "a in (x,,y)", "a = 'x", "`a = 1", "a ~ 3"} {
		if _, err := ParseFilter(bad); !errors.Is(err, ErrInvalidFilter) {
			t.Errorf("ParseFilter(%q): want an invalid-filter error, got %v", bad, err)
		}
	}
}

func testSchema() *txlog.StructType {
	return &txlog.StructType{Fields: []txlog.StructField{
		{Name: "i", Type: txlog.Integer, Nullable: true},
		{Name: "f", Type: txlog.Float, Nullable: true},
		{Name: "d", Type: &txlog.DecimalType{Precision: 5, Scale: 2}, Nullable: true},
		{Name: "s", Type: txlog.String, Nullable: true},
		{Name: "day", Type: txlog.Date, Nullable: true},
		{Name: "ts", Type: txlog.Timestamp, Nullable: true},
		{Name: "b", Type: txlog.Boolean, Nullable: true},
		{Name: "bin", Type: txlog.Binary, Nullable: true},
		{Name: "st", Type: &txlog.StructType{}, Nullable: true},
	}}
}

func TestBindFilterErrors(t *testing.T) {
	sch := testSchema()
	for _, tc := range []struct {
		f    Filter
		want []string
	}{
		{Filter{"nope", "=", []string{"1"}}, []string{`"nope"`, "no such column", "i, f"}},
		{Filter{"i", "=", []string{"abc"}}, []string{`"abc"`, "integer", `"i"`}},
		{Filter{"day", "<", []string{"2024-13-01"}}, []string{`"2024-13-01"`, "date"}},
		{Filter{"ts", "=", []string{"yesterday"}}, []string{`"yesterday"`, "timestamp"}},
		{Filter{"b", "=", []string{"maybe"}}, []string{`"maybe"`, "boolean"}},
		{Filter{"d", "in", []string{"1", "x"}}, []string{`"x"`, "decimal(5,2)"}},
		{Filter{"bin", "=", []string{"x"}}, []string{"binary"}},
		{Filter{"st", "=", []string{"x"}}, []string{"nested"}},
		{Filter{"i", "~", []string{"1"}}, []string{"operator"}},
	} {
		_, err := bindFilter(tc.f, sch)
		var fe *FilterError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidFilter) {
			t.Errorf("bind %v: want a FilterError, got %v", tc.f, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("bind %v: error %q does not mention %q", tc.f, err, w)
			}
		}
	}
}

func TestFilterSemantics(t *testing.T) {
	sch := testSchema()
	bind := func(col, op string, vals ...string) *boundFilter {
		t.Helper()
		f, err := bindFilter(Filter{col, op, vals}, sch)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	iv := func(n int64) value { return value{i: n} }
	for _, tc := range []struct {
		f    *boundFilter
		v    value
		want bool
	}{
		{bind("i", ">", "2.5"), iv(3), true},
		{bind("i", ">", "2.5"), iv(2), false},
		{bind("i", "<", "2.5"), iv(2), true},
		{bind("i", "<", "2.5"), iv(3), false},
		{bind("i", "=", "2.5"), iv(2), false},
		{bind("i", "!=", "2.5"), iv(2), true},
		{bind("i", "!=", "2"), value{null: true}, false},
		{bind("i", "in", "1", "2.5", "3"), iv(3), true},
		{bind("f", "=", "1.1"), value{f: float64(float32(1.1))}, true},
		{bind("f", "!=", "1"), value{f: math.NaN()}, true},
		{bind("f", "<", "1"), value{f: math.NaN()}, false},
		{bind("s", ">=", "b"), value{s: "b"}, true},
		{bind("s", ">", "b"), value{s: "ab"}, false},
		{bind("b", "=", "TRUE"), value{b: true}, true},
		{bind("ts", ">=", "2024-01-02T00:00:00.0000005Z"), iv(1704153600000001), true},
		{bind("ts", ">=", "2024-01-02T00:00:00.0000005Z"), iv(1704153600000000), false},
		{bind("ts", "=", "2024-01-02 00:00:00"), iv(1704153600000000), true},
		{bind("day", "=", "1970-01-02"), iv(1), true},
	} {
		if got := tc.f.match(tc.v); got != tc.want {
			t.Errorf("%v on %+v = %v, want %v", tc.f.src, tc.v, got, tc.want)
		}
	}
	// Decimals between representable values.
	d := bind("d", ">", "1.234")
	lo, _, _, _ := typeOf(&txlog.DecimalType{Precision: 5, Scale: 2}).literal("1.24")
	lo2, _, _, _ := typeOf(&txlog.DecimalType{Precision: 5, Scale: 2}).literal("1.23")
	if !d.match(lo) || d.match(lo2) {
		t.Errorf("decimal > 1.234 wrong")
	}
}

func TestStatsBounds(t *testing.T) {
	sch := testSchema()
	bind := func(col, op string, vals ...string) *boundFilter {
		f, err := bindFilter(Filter{col, op, vals}, sch)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	str := func(lo, hi string) *bounds {
		return &bounds{min: value{s: lo}, max: value{s: hi}, hasMin: true, hasMax: true, maxPrefix: true}
	}
	for _, tc := range []struct {
		f    *boundFilter
		b    *bounds
		want bool
	}{
		// A truncated max "abc" admits "abcz...".
		{bind("s", "=", "abcz"), str("a", "abc"), true},
		{bind("s", "=", "abd"), str("a", "abc"), false},
		{bind("s", ">", "abc"), str("a", "abc"), true},
		{bind("s", ">", "abd"), str("a", "abc"), false},
		{bind("s", "<", "a"), str("a", "abc"), false},
		{bind("s", "<=", "a"), str("a", "abc"), true},
		{bind("s", "!=", "a"), str("a", "a"), true},
		{bind("i", "!=", "5"), &bounds{min: value{i: 5}, max: value{i: 5}, hasMin: true, hasMax: true}, false},
		{bind("i", "=", "5"), &bounds{allNull: true}, false},
		{bind("i", "=", "5"), &bounds{}, true},
		{bind("i", "in", "1", "9"), &bounds{min: value{i: 2}, max: value{i: 8}, hasMin: true, hasMax: true}, false},
		{bind("i", "in", "1", "8"), &bounds{min: value{i: 2}, max: value{i: 8}, hasMin: true, hasMax: true}, true},
	} {
		if got := tc.f.mayMatch(tc.b); got != tc.want {
			t.Errorf("%v on %+v: mayMatch %v, want %v", tc.f.src, tc.b, got, tc.want)
		}
	}
	// Timestamp statistics are truncated to milliseconds: the max admits the next 999µs.
	ct := typeOf(txlog.Timestamp)
	hi, ok := ct.statBound([]byte(`"2024-01-02T00:00:00.123Z"`), true)
	if !ok || hi.i != 1704153600123999 {
		t.Errorf("timestamp max bound %d", hi.i)
	}
}
