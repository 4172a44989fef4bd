package reader

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/lakehouse/lake/internal/units"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/decimal128"

	"github.com/lakehouse/lake/txlog"
)

// kind is the comparison domain of a primitive Delta type.
type kind uint8

const (
	kInvalid kind = iota
	kInt          // byte, short, integer, long; date (days); timestamp, timestamp_ntz (µs)
	kFloat        // float (rounded to float32), double
	kString       // string, compared bytewise (as Spark compares UTF-8)
	kBool         // boolean, false < true
	kDecimal      // decimal: the unscaled value at the column's scale
	kBinary       // binary: only carried, never compared
)

// value is one non-nested value in its comparison domain, or null.
type value struct {
	null bool
	i    int64
	f    float64
	s    string
	b    bool
	d    decimal128.Num
}

// colType describes a primitive column for comparisons and literal parsing.
type colType struct {
	delta   txlog.DataType
	kind    kind
	name    string // "long", "date", "decimal(10,2)", ...
	float32 bool   // a float column: literals are rounded to float32
	scale   int32  // decimal scale
	prec    int32  // decimal precision
	ntz     bool   // timestamp_ntz
	date    bool
	ts      bool
}

func typeOf(t txlog.DataType) colType {
	ct := colType{delta: t, name: t.TypeName()}
	switch v := t.(type) {
	case *txlog.PrimitiveType:
		switch v.Name {
		case "byte", "short", "integer", "long":
			ct.kind = kInt
		case "date":
			ct.kind, ct.date = kInt, true
		case "timestamp":
			ct.kind, ct.ts = kInt, true
		case "timestamp_ntz":
			ct.kind, ct.ts, ct.ntz = kInt, true, true
		case "float":
			ct.kind, ct.float32 = kFloat, true
		case "double":
			ct.kind = kFloat
		case "string":
			ct.kind = kString
		case "boolean":
			ct.kind = kBool
		case "binary":
			ct.kind = kBinary
		}
	case *txlog.DecimalType:
		ct.kind, ct.scale, ct.prec = kDecimal, int32(v.Scale), int32(v.Precision)
	}
	return ct
}

// cmp compares two non-null values of the same kind. NaN compares as unordered: callers treat
// a NaN on either side as "not comparable" through cmpOK.
func (ct colType) cmp(a, b value) int {
	switch ct.kind {
	case kInt:
		switch {
		case a.i < b.i:
			return -1
		case a.i > b.i:
			return 1
		}
		return 0
	case kFloat:
		switch {
		case a.f < b.f:
			return -1
		case a.f > b.f:
			return 1
		}
		return 0
	case kString, kBinary:
		return strings.Compare(a.s, b.s)
	case kBool:
		switch {
		case a.b == b.b:
			return 0
		case !a.b:
			return -1
		}
		return 1
	case kDecimal:
		return a.d.Cmp(b.d)
	}
	return 0
}

// isNaN reports a float NaN, which no ordered comparison matches.
func (ct colType) isNaN(v value) bool { return ct.kind == kFloat && math.IsNaN(v.f) }

// literal parses a filter literal for the column. For types where the literal may fall between
// two representable values (an integer column and 2.5, a decimal(5,2) column and 1.234, a
// timestamp with nanoseconds), lo and hi are the representable values just below and above it;
// exact reports lo == hi == the literal.
func (ct colType) literal(s string) (lo, hi value, exact bool, err error) {
	switch ct.kind {
	case kInt:
		switch {
		case ct.date:
			d, err := parseDate(s)
			if err != nil {
				return lo, hi, false, errors.New("want a date like 2024-01-02")
			}
			return value{i: d}, value{i: d}, true, nil
		case ct.ts:
			t, err := parseTimestamp(s, ct.ntz)
			if err != nil {
				return lo, hi, false, errors.New("want a timestamp like 2024-01-02T03:04:05.123456Z or 2024-01-02 03:04:05")
			}
			us := t.Unix()*1e6 + int64(t.Nanosecond()/1000)
			if t.Nanosecond()%1000 == 0 {
				return value{i: us}, value{i: us}, true, nil
			}
			return value{i: us}, value{i: us + 1}, false, nil
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return value{i: n}, value{i: n}, true, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) >= 9.2e18 {
			return lo, hi, false, errors.New("want an integer")
		}
		l, h := math.Floor(f), math.Ceil(f)
		return value{i: int64(l)}, value{i: int64(h)}, l == h, nil
	case kFloat:
		f, err := parseFloat(s)
		if err != nil {
			return lo, hi, false, errors.New("want a number")
		}
		if ct.float32 {
			f = float64(float32(f))
		}
		return value{f: f}, value{f: f}, true, nil
	case kString:
		return value{s: s}, value{s: s}, true, nil
	case kBool:
		b, err := strconv.ParseBool(strings.ToLower(s))
		if err != nil {
			return lo, hi, false, errors.New("want true or false")
		}
		return value{b: b}, value{b: b}, true, nil
	case kDecimal:
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return lo, hi, false, errors.New("want a decimal number")
		}
		l, h, ok := ratToDecimal(r, ct.scale)
		if !ok {
			return lo, hi, false, errors.New("out of the range of a 38-digit decimal")
		}
		return value{d: l}, value{d: h}, l == h, nil
	}
	return lo, hi, false, fmt.Errorf("filters on %s columns are not supported", ct.name)
}

// ratToDecimal returns the unscaled decimals at scale just below and above r.
func ratToDecimal(r *big.Rat, scale int32) (lo, hi decimal128.Num, ok bool) {
	m := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))
	x := new(big.Rat).Mul(r, m)
	num, den := x.Num(), x.Denom()
	q, rem := new(big.Int).QuoRem(num, den, new(big.Int))
	l := new(big.Int).Set(q)
	h := new(big.Int).Set(q)
	if rem.Sign() != 0 {
		if num.Sign() < 0 {
			l.Sub(l, big.NewInt(1))
		} else {
			h.Add(h, big.NewInt(1))
		}
	}
	if l.BitLen() > 126 || h.BitLen() > 126 {
		return lo, hi, false
	}
	return decimal128.FromBigInt(l), decimal128.FromBigInt(h), true
}

func parseFloat(s string) (float64, error) {
	switch strings.ToLower(s) {
	case "nan":
		return math.NaN(), nil
	case "inf", "+inf", "infinity", "+infinity":
		return math.Inf(1), nil
	case "-inf", "-infinity":
		return math.Inf(-1), nil
	}
	return strconv.ParseFloat(s, 64)
}

// parseDate parses YYYY-MM-DD into days since the epoch.
func parseDate(s string) (int64, error) {
	t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	return daysOf(t), nil
}

func daysOf(t time.Time) int64 {
	return units.FloorDiv(t.Unix(), 86400)
}

var tsLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999 Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
	"2006-01-02",
}

// parseTimestamp parses the timestamp spellings of filters, partition values and statistics.
// A value without a zone is UTC (for timestamp_ntz: the wall clock as written).
func parseTimestamp(s string, _ bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range tsLayouts {
		if t, err := time.Parse(l, s); err == nil {
			// For timestamp_ntz a literal with a zone means that instant's UTC wall clock.
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid timestamp %q", s)
}

// fromGo converts a Go value (a parsed partition value from internal/partval) to a value of
// column type ct. nil is null.
func (ct colType) fromGo(x any) (value, error) {
	if x == nil {
		return value{null: true}, nil
	}
	bad := func() (value, error) {
		return value{}, fmt.Errorf("partition value %v (%T) does not fit type %s", x, x, ct.name)
	}
	switch ct.kind {
	case kInt:
		switch v := x.(type) {
		case time.Time:
			if ct.date {
				return value{i: daysOf(v)}, nil
			}
			return value{i: v.Unix()*1e6 + int64(v.Nanosecond()/1000)}, nil
		case arrow.Date32:
			return value{i: int64(v)}, nil
		case arrow.Date64:
			return value{i: int64(v) / 86400000}, nil
		case arrow.Timestamp:
			return value{i: int64(v)}, nil
		case string:
			if ct.date {
				d, err := parseDate(v)
				if err != nil {
					return bad()
				}
				return value{i: d}, nil
			}
			if ct.ts {
				t, err := parseTimestamp(v, ct.ntz)
				if err != nil {
					return bad()
				}
				return value{i: t.Unix()*1e6 + int64(t.Nanosecond()/1000)}, nil
			}
		}
		if n, ok := toInt64(x); ok {
			return value{i: n}, nil
		}
	case kFloat:
		switch v := x.(type) {
		case float32:
			return value{f: float64(v)}, nil
		case float64:
			if ct.float32 {
				v = float64(float32(v))
			}
			return value{f: v}, nil
		}
		if n, ok := toInt64(x); ok {
			return value{f: float64(n)}, nil
		}
	case kString, kBinary:
		switch v := x.(type) {
		case string:
			return value{s: v}, nil
		case []byte:
			return value{s: string(v)}, nil
		}
	case kBool:
		if v, ok := x.(bool); ok {
			return value{b: v}, nil
		}
	case kDecimal:
		switch v := x.(type) {
		case decimal128.Num:
			return value{d: v}, nil
		case *big.Rat:
			l, h, ok := ratToDecimal(v, ct.scale)
			if ok && l == h {
				return value{d: l}, nil
			}
		case *big.Float:
			r, _ := v.Rat(nil)
			if r != nil {
				l, h, ok := ratToDecimal(r, ct.scale)
				if ok && l == h {
					return value{d: l}, nil
				}
			}
		case string:
			r, ok := new(big.Rat).SetString(v)
			if ok {
				l, h, ok := ratToDecimal(r, ct.scale)
				if ok && l == h {
					return value{d: l}, nil
				}
			}
		case float64:
			r := new(big.Rat)
			if r.SetFloat64(v) != nil {
				l, h, ok := ratToDecimal(r, ct.scale)
				if ok {
					// A float partition value: the nearest decimal at the scale.
					if l == h {
						return value{d: l}, nil
					}
					n, _ := decimal128.FromFloat64(v, ct.prec, ct.scale)
					return value{d: n}, nil
				}
			}
		}
		if n, ok := toInt64(x); ok {
			return value{d: decimal128.FromI64(n).IncreaseScaleBy(ct.scale)}, nil
		}
	}
	return bad()
}

func toInt64(x any) (int64, bool) {
	switch v := x.(type) {
	case int:
		return int64(v), true
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	}
	return 0, false
}

// statBound converts a JSON statistic (minValues or maxValues entry) to a bound. upper selects
// the rounding for values that do not fit exactly (a decimal with more digits, a timestamp
// truncated to milliseconds). ok is false when the statistic cannot be used.
func (ct colType) statBound(raw json.RawMessage, upper bool) (v value, ok bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return v, false
	}
	switch ct.kind {
	case kInt:
		if ct.date || ct.ts {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return v, false
			}
			if ct.date {
				d, err := parseDate(s)
				if err != nil {
					return v, false
				}
				return value{i: d}, true
			}
			t, err := parseTimestamp(s, ct.ntz)
			if err != nil {
				return v, false
			}
			us := t.Unix()*1e6 + int64(t.Nanosecond()/1000)
			if upper {
				// Delta truncates timestamp statistics to milliseconds.
				us += 999
				if t.Nanosecond()%1000 != 0 {
					us++
				}
			}
			return value{i: us}, true
		}
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return v, false
		}
		if i, err := n.Int64(); err == nil {
			return value{i: i}, true
		}
		f, err := n.Float64()
		if err != nil || math.Abs(f) >= 9.2e18 {
			return v, false
		}
		if upper {
			return value{i: int64(math.Ceil(f))}, true
		}
		return value{i: int64(math.Floor(f))}, true
	case kFloat:
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return v, false
		}
		f, err := n.Float64()
		if err != nil || math.IsNaN(f) {
			return v, false
		}
		if ct.float32 {
			// The statistic is the float32 printed as a decimal: widen it by one float32 ulp
			// so the rounding of that print cannot exclude the value.
			f32 := float32(f)
			if upper {
				f32 = math.Nextafter32(f32, float32(math.Inf(1)))
			} else {
				f32 = math.Nextafter32(f32, float32(math.Inf(-1)))
			}
			f = float64(f32)
		}
		return value{f: f}, true
	case kString:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return v, false
		}
		return value{s: s}, true
	case kBool:
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return v, false
		}
		return value{b: b}, true
	case kDecimal:
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return v, false
			}
			n = json.Number(s)
		}
		r, ok := new(big.Rat).SetString(string(n))
		if !ok {
			return v, false
		}
		l, h, ok := ratToDecimal(r, ct.scale)
		if !ok {
			return v, false
		}
		if upper {
			return value{d: h}, true
		}
		return value{d: l}, true
	}
	return v, false
}
