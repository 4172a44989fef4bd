// Package partval serialises partition values the way the Delta protocol writes them in
// add.partitionValues ("Partition Value Serialization"), and escapes them into Hive-style
// partition folder names (`event_date=2024-01-01/`) the way Spark does.
//
// # Go values
//
// Format takes, and Parse returns, one Go representation per Delta type:
//
//	string         string
//	long           int64
//	integer        int32
//	short          int16
//	byte           int8
//	float          float32
//	double         float64
//	boolean        bool
//	binary         []byte (the partition value's raw bytes)
//	date           int32, days since 1970-01-01 (the Arrow date32 value)
//	timestamp      time.Time in UTC
//	timestamp_ntz  time.Time in UTC holding the wall-clock reading
//	decimal(p,s)   string, plain notation with exactly s fractional digits ("12.30")
//
// A nil value is a null partition value, serialised as a nil *string. Format also accepts a few
// conveniences: any Go integer for the integer types (range-checked), time.Time for a date, the
// Arrow types arrow.Date32 and arrow.Timestamp (microseconds), and decimal128.Num or an unscaled
// *big.Int for a decimal.
//
// # Quirks
//
// The protocol makes an empty string a null for every type, strings included (Spark cannot
// write an empty string partition value either: it writes __HIVE_DEFAULT_PARTITION__). So Format
// turns "" into nil and Parse turns "" into nil; a writer must refuse "" for a NOT NULL partition
// column, since it cannot be stored. The reverse does not hold: the string
// "__HIVE_DEFAULT_PARTITION__" is an ordinary value for Format and Parse. Only its folder name
// (PartitionSegment) is the one of a null, so folder names are not the values: add.partitionValues
// is, and readers must take values from there. Parse is lenient where other writers were:
// "2021.0" for an integer column (a float printed by a writer that had the wrong type), Java's
// float spellings ("1.0E10", "Infinity"), timestamps with a space or a "T", with or without a
// zone; a timestamp without a zone is read as UTC.
//
// # Errors
//
// Format and Parse return an error naming the value and the type when the value does not fit the
// type (a malformed number, an out-of-range integer, a decimal with too many digits), or when the
// type cannot be a partition column (struct, array, map, variant).
//
// # Concurrency
//
// All functions are safe for concurrent use.
package partval

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/decimal128"

	"github.com/lakehouse/lake/txlog"
)

// NullPartition is the folder-name value of a null partition value (`k=__HIVE_DEFAULT_PARTITION__`).
const NullPartition = "__HIVE_DEFAULT_PARTITION__"

const (
	dateLayout = "2006-01-02"
	// Timestamps are written as the protocol recommends: ISO 8601 adjusted to UTC, microseconds.
	timestampLayout = "2006-01-02T15:04:05.000000Z"
	// timestamp_ntz has no zone: Spark's form, fraction only when non-zero.
	timestampNTZLayout = "2006-01-02 15:04:05.999999"
)

var epochDay = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// Format serialises v, a value of Delta type t, as a partition value. nil (and "") give a nil
// pointer: a null partition value.
func Format(v any, t txlog.DataType) (*string, error) {
	if v == nil {
		return nil, nil
	}
	s, err := format(v, t)
	if err != nil {
		return nil, fmt.Errorf("partition value %v (%T) for type %s: %w", v, v, typeName(t), err)
	}
	if s == "" {
		return nil, nil
	}
	return &s, nil
}

func typeName(t txlog.DataType) string {
	if t == nil {
		return "<nil>"
	}
	return t.TypeName()
}

func format(v any, t txlog.DataType) (string, error) {
	switch tt := t.(type) {
	case *txlog.DecimalType:
		return formatDecimal(v, tt)
	case *txlog.PrimitiveType:
		switch tt.Name {
		case "string":
			if s, ok := v.(string); ok {
				return s, nil
			}
		case "long":
			return formatInt(v, math.MinInt64, math.MaxInt64)
		case "integer":
			return formatInt(v, math.MinInt32, math.MaxInt32)
		case "short":
			return formatInt(v, math.MinInt16, math.MaxInt16)
		case "byte":
			return formatInt(v, math.MinInt8, math.MaxInt8)
		case "float":
			switch f := v.(type) {
			case float32:
				return FormatFloat(float64(f), 32), nil
			case float64:
				return FormatFloat(f, 32), nil
			}
		case "double":
			switch f := v.(type) {
			case float32:
				return FormatFloat(float64(f), 64), nil
			case float64:
				return FormatFloat(f, 64), nil
			}
		case "boolean":
			if b, ok := v.(bool); ok {
				return strconv.FormatBool(b), nil
			}
		case "binary":
			switch b := v.(type) {
			case []byte:
				return string(b), nil
			case string:
				return b, nil
			}
		case "date":
			switch d := v.(type) {
			case int32:
				return FormatDate(d), nil
			case arrow.Date32:
				return FormatDate(int32(d)), nil
			case time.Time:
				return d.Format(dateLayout), nil
			}
		case "timestamp":
			if ts, ok := toTime(v); ok {
				return ts.UTC().Format(timestampLayout), nil
			}
		case "timestamp_ntz":
			if ts, ok := toTime(v); ok {
				return ts.UTC().Format(timestampNTZLayout), nil
			}
		default:
			return "", errors.New("the type cannot be a partition column")
		}
		return "", errors.New("wrong Go type for this column type")
	case nil:
		return "", errors.New("no type")
	}
	return "", errors.New("the type cannot be a partition column")
}

func toTime(v any) (time.Time, bool) {
	switch ts := v.(type) {
	case time.Time:
		return ts, true
	case arrow.Timestamp:
		return time.UnixMicro(int64(ts)), true
	}
	return time.Time{}, false
}

func formatInt(v any, lo, hi int64) (string, error) {
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int8:
		n = int64(x)
	case int16:
		n = int64(x)
	case int32:
		n = int64(x)
	case int64:
		n = x
	case uint8:
		n = int64(x)
	case uint16:
		n = int64(x)
	case uint32:
		n = int64(x)
	case uint:
		if uint64(x) > math.MaxInt64 {
			return "", errors.New("out of range")
		}
		n = int64(x)
	case uint64:
		if x > math.MaxInt64 {
			return "", errors.New("out of range")
		}
		n = int64(x)
	default:
		return "", errors.New("wrong Go type for this column type")
	}
	if n < lo || n > hi {
		return "", errors.New("out of range")
	}
	return strconv.FormatInt(n, 10), nil
}

// FormatDate formats days since 1970-01-01 as YYYY-MM-DD.
func FormatDate(days int32) string {
	return epochDay.AddDate(0, 0, int(days)).Format(dateLayout)
}

// FormatFloat formats f as Java's Float.toString (bits 32) or Double.toString (bits 64) do, which
// is how Spark writes float partition values: "1.0", "0.001", "1.0E7", "1.5E-4", "NaN",
// "Infinity", "-Infinity".
func FormatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	abs := math.Abs(f)
	if abs >= 1e-3 && abs < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, bits)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'E', -1, bits) // 1.5E-04
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

func formatDecimal(v any, t *txlog.DecimalType) (string, error) {
	switch d := v.(type) {
	case string:
		return CanonicalDecimal(d, t.Precision, t.Scale)
	case decimal128.Num:
		return CanonicalDecimal(d.ToString(int32(t.Scale)), t.Precision, t.Scale)
	case *big.Int:
		return CanonicalDecimal(decimalString(d, t.Scale), t.Precision, t.Scale)
	}
	return "", errors.New("wrong Go type for a decimal (want string or decimal128.Num)")
}

// decimalString writes an unscaled integer and a scale as a literal CanonicalDecimal reads.
func decimalString(unscaled *big.Int, scale int) string {
	return unscaled.String() + "e-" + strconv.Itoa(scale)
}

// CanonicalDecimal rewrites a decimal literal ("1.5", "-0.25", "1E+3", "12") in plain notation
// with exactly scale fractional digits, and checks it fits precision digits. A literal with more
// fractional digits than scale is an error unless the extra digits are zeros.
func CanonicalDecimal(s string, precision, scale int) (string, error) {
	r, err := parseRat(s)
	if err != nil {
		return "", err
	}
	// Scale to an integer exactly.
	m := new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	if !m.IsInt() {
		return "", fmt.Errorf("%q has more than %d fractional digits", s, scale)
	}
	unscaled := m.Num()
	abs := new(big.Int).Abs(unscaled)
	digits := abs.String()
	if len(digits) > precision && abs.Sign() != 0 {
		return "", fmt.Errorf("%q does not fit decimal(%d,%d)", s, precision, scale)
	}
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if unscaled.Sign() < 0 {
		digits = "-" + digits
	}
	return digits, nil
}

// parseRat reads a decimal literal: [+-]digits[.digits][(e|E)[+-]digits]. It refuses exponents
// beyond ±400, which no decimal(38) or long needs, so that a hostile "1e999999999" cannot make it
// compute a gigantic power of ten.
func parseRat(s string) (*big.Rat, error) {
	t := strings.TrimSpace(s)
	mant, exp, hasExp := strings.Cut(strings.ToLower(t), "e")
	if hasExp {
		e, err := strconv.Atoi(exp)
		if err != nil || e < -400 || e > 400 {
			return nil, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	m := strings.TrimLeft(mant, "+-")
	if len(mant)-len(m) > 1 || m == "" || m == "." || strings.Count(m, ".") > 1 ||
		strings.Trim(m, "0123456789.") != "" {
		return nil, fmt.Errorf("%q is not a decimal number", s)
	}
	r, ok := new(big.Rat).SetString(t)
	if !ok {
		return nil, fmt.Errorf("%q is not a decimal number", s)
	}
	return r, nil
}

// Parse reads a partition value of Delta type t. nil and "" give nil (a null).
func Parse(s *string, t txlog.DataType) (any, error) {
	if s == nil || *s == "" {
		return nil, nil
	}
	v, err := parse(*s, t)
	if err != nil {
		return nil, fmt.Errorf("partition value %q is not a valid %s: %w", *s, typeName(t), err)
	}
	return v, nil
}

func parse(s string, t txlog.DataType) (any, error) {
	switch tt := t.(type) {
	case *txlog.DecimalType:
		return CanonicalDecimal(s, tt.Precision, tt.Scale)
	case *txlog.PrimitiveType:
		switch tt.Name {
		case "string":
			return s, nil
		case "long":
			return parseInt(s, 64)
		case "integer":
			n, err := parseInt(s, 32)
			return int32(n), err
		case "short":
			n, err := parseInt(s, 16)
			return int16(n), err
		case "byte":
			n, err := parseInt(s, 8)
			return int8(n), err
		case "float":
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 32)
			return float32(f), err
		case "double":
			return strconv.ParseFloat(strings.TrimSpace(s), 64)
		case "boolean":
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
			return nil, errors.New(`want "true" or "false"`)
		case "binary":
			return []byte(s), nil
		case "date":
			return ParseDate(s)
		case "timestamp", "timestamp_ntz":
			return ParseTimestamp(s)
		}
		return nil, errors.New("the type cannot be a partition column")
	case nil:
		return nil, errors.New("no type")
	}
	return nil, errors.New("the type cannot be a partition column")
}

// parseInt parses an integer of bitSize bits. It accepts a float spelling of an integral value
// ("2021.0", "1.0E3"), which some writers produced.
func parseInt(s string, bitSize int) (int64, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseInt(s, 10, bitSize)
	if err == nil {
		return n, nil
	}
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("out of range for a %d-bit integer", bitSize)
	}
	// Lenient: an integral decimal literal. big.Rat keeps it exact beyond 2^53.
	r, perr := parseRat(s)
	if perr != nil || !r.IsInt() {
		return 0, errors.New("not an integer")
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("out of range for a %d-bit integer", bitSize)
	}
	n = r.Num().Int64()
	if bitSize < 64 && (n < -(1<<(bitSize-1)) || n > 1<<(bitSize-1)-1) {
		return 0, fmt.Errorf("out of range for a %d-bit integer", bitSize)
	}
	return n, nil
}

// ParseDate parses YYYY-MM-DD (also with a time part, which is dropped) into days since
// 1970-01-01.
func ParseDate(s string) (int32, error) {
	s = strings.TrimSpace(s)
	d, err := time.Parse(dateLayout, s)
	if err != nil {
		ts, terr := ParseTimestamp(s)
		if terr != nil || len(s) <= len(dateLayout) {
			return 0, errors.New("want YYYY-MM-DD")
		}
		d = ts
	}
	sec := d.Unix()
	days := sec / 86400
	if sec%86400 < 0 {
		days--
	}
	if days < math.MinInt32 || days > math.MaxInt32 {
		return 0, errors.New("out of range")
	}
	return int32(days), nil
}

var timestampLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999 Z07:00",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	dateLayout,
}

// ParseTimestamp parses the timestamp spellings writers use: "2024-01-02 03:04:05[.ffffff]"
// (Spark), "2024-01-02T03:04:05[.ffffff]Z" (ISO 8601 in UTC), with any zone offset, or none. A
// timestamp without a zone is read as UTC. The result is in UTC, truncated to microseconds (the
// protocol's precision).
func ParseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timestampLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC().Truncate(time.Microsecond), nil
		}
	}
	return time.Time{}, errors.New(`want "YYYY-MM-DD HH:MM:SS[.ffffff]" or ISO 8601`)
}
