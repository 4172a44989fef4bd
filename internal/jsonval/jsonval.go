// Package jsonval renders scalar values as JSON text, the one way lake writes them: the jsonl
// rows of `lake cat` (internal/rowfmt), the JSON stats of data files (writer) and the JSON stats
// rendered from a checkpoint's stats_parsed (txlog) all go through it.
//
//   - Strings: quotes, backslashes and control characters escaped (\n, \r, \t, else \u00XX),
//     U+2028 and U+2029 escaped as encoding/json does, invalid UTF-8 replaced by U+FFFD, and
//     everything else, HTML characters and non-ASCII included, as is.
//   - Floats: Go's shortest form with encoding/json's choice of exponent (outside [1e-6, 1e21)),
//     so 1e6 is 1000000; NaN and infinities, which JSON numbers cannot hold, are the strings
//     "NaN", "Infinity" and "-Infinity" (as Spark writes them in stats).
//   - Stats timestamps: RFC 3339 with milliseconds, in UTC with a Z (timestamp) or without a zone
//     (timestamp_ntz); microseconds or nanoseconds are kept when the value has them.
//   - Decimals: the number with the type's scale, unquoted (stats) — callers that want a string
//     quote it with AppendString.
package jsonval

import (
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendFloat appends f (of bits 32 or 64) as a JSON number, or NaN and infinities as strings.
func AppendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	return AppendFloatText(b, f, bits)
}

// AppendFloatText appends f as AppendFloat does, but NaN and infinities unquoted (for CSV and
// tables).
func AppendFloatText(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	n0 := len(b)
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// e-09 to e-9, as encoding/json writes it
		n := len(b)
		if n-n0 >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// AppendStatsTimestamp appends t as a quoted stats timestamp: UTC with a Z when utc, else the
// wall time without a zone.
func AppendStatsTimestamp(b []byte, t time.Time, utc bool) []byte {
	t = t.UTC()
	layout := "2006-01-02T15:04:05.000"
	switch ns := t.Nanosecond(); {
	case ns%1e6 == 0:
	case ns%1e3 == 0:
		layout = "2006-01-02T15:04:05.000000"
	default:
		layout = "2006-01-02T15:04:05.000000000"
	}
	if utc {
		layout += "Z"
	}
	b = append(b, '"')
	b = t.AppendFormat(b, layout)
	return append(b, '"')
}

// AppendDate appends days since 1970-01-01 as a quoted YYYY-MM-DD.
func AppendDate(b []byte, days int64) []byte {
	b = append(b, '"')
	b = time.Unix(days*86400, 0).UTC().AppendFormat(b, "2006-01-02")
	return append(b, '"')
}

// AppendDecimal128 appends n with scale as an unquoted number ("-5.670" for -5670 at scale 3).
func AppendDecimal128(b []byte, n decimal128.Num, scale int32) []byte {
	hi, lo := n.HighBits(), n.LowBits()
	if (hi == 0 && int64(lo) >= 0) || (hi == -1 && int64(lo) < 0) {
		return AppendDecimalInt(b, int64(lo), scale)
	}
	return AppendDecimalBig(b, n.BigInt(), scale)
}

// AppendDecimalInt appends the unscaled v with scale as an unquoted number.
func AppendDecimalInt(b []byte, v int64, scale int32) []byte {
	if scale <= 0 {
		b = strconv.AppendInt(b, v, 10)
		for ; scale < 0 && v != 0; scale++ {
			b = append(b, '0')
		}
		return b
	}
	var tmp [24]byte
	u := uint64(v)
	if v < 0 {
		u = uint64(-(v + 1)) + 1
	}
	return placeDecimalPoint(b, v < 0, strconv.AppendUint(tmp[:0], u, 10), int(scale))
}

// AppendDecimalBig appends the unscaled v with scale as an unquoted number.
func AppendDecimalBig(b []byte, v *big.Int, scale int32) []byte {
	if scale <= 0 {
		b = v.Append(b, 10)
		for ; scale < 0 && v.Sign() != 0; scale++ {
			b = append(b, '0')
		}
		return b
	}
	return placeDecimalPoint(b, v.Sign() < 0, new(big.Int).Abs(v).Append(nil, 10), int(scale))
}

func placeDecimalPoint(b []byte, neg bool, digits []byte, scale int) []byte {
	if neg {
		b = append(b, '-')
	}
	if len(digits) <= scale {
		b = append(b, '0', '.')
		for k := len(digits); k < scale; k++ {
			b = append(b, '0')
		}
		return append(b, digits...)
	}
	at := len(digits) - scale
	b = append(b, digits[:at]...)
	b = append(b, '.')
	return append(b, digits[at:]...)
}
