package writer

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lakehouse/lake/internal/units"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"

	"github.com/lakehouse/lake/internal/jsonval"
	"github.com/lakehouse/lake/txlog"
)

// This file computes add.stats (protocol "Per-file Statistics") from the Arrow arrays as they
// are written, the way Delta's Spark writer collects them:
//
//   - numRecords for the file; nullCount, minValues and maxValues for the first
//     delta.dataSkippingNumIndexedCols leaf columns of the data schema (default 32, -1 for all;
//     partition columns are not in the data schema), or for the columns listed in
//     delta.dataSkippingStatsColumns. Struct fields count as leaves and get nested objects; an
//     array or a map is one leaf with a nullCount only.
//   - min/max for numbers, decimals, dates, timestamps and strings; none for booleans and
//     binaries. A float column holding NaN or an infinity gets no min/max (JSON cannot hold them,
//     and a bound without them would be wrong).
//   - strings are cut to 32 characters: the min is the prefix; the max is the prefix followed by
//     a tie-breaker (U+007F or U+10FFFF) that keeps it an upper bound in UTF-8 byte order, or is
//     left out when no short upper bound exists.
//   - timestamps as RFC 3339 in UTC with milliseconds, the min rounded down and the max rounded
//     up, so both stay bounds; dates as YYYY-MM-DD; decimals as JSON numbers.
//   - tightBounds: true only on tables with deletion vectors (it is implied otherwise).
//   - keys are physical names (column mapping).

const stringPrefix = 32

// statCol is a column of the stats: a leaf, or a struct whose indexed fields are children.
type statCol struct {
	name     string // JSON key: the physical name
	field    int    // index in the parent struct or among the data columns
	children []*statCol
	leaf     int  // index of the leaf accumulator; -1 for a struct
	minmax   bool // leaf collects min/max
	kind     txlog.DataType
}

// statsPlan says which columns of a data file get statistics.
type statsPlan struct {
	cols        []*statCol
	leaves      int
	tightBounds bool
}

// newStatsPlan picks the indexed leaves of the data columns (physical fields, in file order).
func newStatsPlan(data []txlog.StructField, config map[string]string, mapping string, tightBounds bool) *statsPlan {
	p := &statsPlan{tightBounds: tightBounds}
	limit := 32
	if s := config["delta.dataSkippingNumIndexedCols"]; s != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			limit = n
		}
	}
	var listed map[string]bool
	if s := config["delta.dataSkippingStatsColumns"]; strings.TrimSpace(s) != "" {
		listed = map[string]bool{}
		for _, c := range strings.Split(s, ",") {
			c = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(c), "`", ""))
			if c != "" {
				listed[c] = true
			}
		}
	}
	include := func(logicalPath string) bool {
		if listed != nil {
			lp := strings.ToLower(logicalPath)
			for {
				if listed[lp] {
					return true
				}
				i := strings.LastIndexByte(lp, '.')
				if i < 0 {
					return false
				}
				lp = lp[:i]
			}
		}
		return limit < 0 || p.leaves < limit
	}
	var walk func(fields []txlog.StructField, parent string) []*statCol
	walk = func(fields []txlog.StructField, parent string) []*statCol {
		var out []*statCol
		for i, f := range fields {
			lp := joinPath(parent, f.Name)
			if st, ok := f.Type.(*txlog.StructType); ok {
				if ch := walk(st.Fields, lp); len(ch) > 0 {
					out = append(out, &statCol{name: physicalName(f, mapping), field: i, children: ch, leaf: -1, kind: f.Type})
				}
				continue
			}
			if !include(lp) {
				continue
			}
			out = append(out, &statCol{name: physicalName(f, mapping), field: i, leaf: p.leaves, minmax: hasMinMax(f.Type), kind: f.Type})
			p.leaves++
		}
		return out
	}
	p.cols = walk(data, "")
	return p
}

func hasMinMax(t txlog.DataType) bool {
	switch v := t.(type) {
	case *txlog.DecimalType:
		return true
	case *txlog.PrimitiveType:
		switch v.Name {
		case "byte", "short", "integer", "long", "float", "double", "date", "timestamp", "timestamp_ntz", "string":
			return true
		}
	}
	return false
}

// leafAcc accumulates one leaf column's statistics over a file.
type leafAcc struct {
	nulls      int64
	has        bool // a min/max was seen
	bad        bool // no min/max can be given (NaN, infinity, invalid UTF-8)
	imin, imax int64
	fmin, fmax float64
	smin, smax string
	dmin, dmax decimal128.Num
}

// fileStats are the statistics of one data file being written.
type fileStats struct {
	plan    *statsPlan
	records int64
	leaves  []leafAcc
}

func newFileStats(p *statsPlan) *fileStats {
	return &fileStats{plan: p, leaves: make([]leafAcc, p.leaves)}
}

// update adds the rows of rec, a record of the data file's schema.
func (s *fileStats) update(rec arrow.RecordBatch) {
	s.records += rec.NumRows()
	for _, c := range s.plan.cols {
		s.updateCol(c, rec.Column(c.field), nil)
	}
}

func (s *fileStats) updateCol(c *statCol, arr arrow.Array, mask []bool) {
	if c.leaf < 0 {
		sa := arr.(*array.Struct)
		m := mask
		if sa.NullN() > 0 {
			m = make([]bool, sa.Len())
			for i := range m {
				m[i] = sa.IsValid(i) && (mask == nil || mask[i])
			}
		}
		for _, ch := range c.children {
			s.updateCol(ch, sa.Field(ch.field), m)
		}
		return
	}
	a := &s.leaves[c.leaf]
	if mask == nil {
		a.nulls += int64(arr.NullN())
	} else {
		for i := 0; i < arr.Len(); i++ {
			if !mask[i] || arr.IsNull(i) {
				a.nulls++
			}
		}
	}
	if !c.minmax || a.bad {
		return
	}
	switch v := arr.(type) {
	case *array.Int8:
		intRange(a, v.Int8Values(), arr, mask)
	case *array.Int16:
		intRange(a, v.Int16Values(), arr, mask)
	case *array.Int32:
		intRange(a, v.Int32Values(), arr, mask)
	case *array.Int64:
		intRange(a, v.Int64Values(), arr, mask)
	case *array.Date32:
		intRange(a, v.Date32Values(), arr, mask)
	case *array.Timestamp:
		intRange(a, v.TimestampValues(), arr, mask)
	case *array.Float32:
		floatRange(a, v.Float32Values(), arr, mask)
	case *array.Float64:
		floatRange(a, v.Float64Values(), arr, mask)
	case *array.String:
		stringRange(a, v, mask)
	case *array.Decimal128:
		for i := 0; i < v.Len(); i++ {
			if v.IsNull(i) || (mask != nil && !mask[i]) {
				continue
			}
			d := v.Value(i)
			if !a.has {
				a.dmin, a.dmax, a.has = d, d, true
				continue
			}
			if d.Less(a.dmin) {
				a.dmin = d
			}
			if d.Greater(a.dmax) {
				a.dmax = d
			}
		}
	}
}

func intRange[T ~int8 | ~int16 | ~int32 | ~int64](a *leafAcc, vals []T, arr arrow.Array, mask []bool) {
	if len(vals) == 0 {
		return
	}
	var mn, mx T
	found := false
	if mask == nil && arr.NullN() == 0 {
		mn, mx = vals[0], vals[0]
		for _, x := range vals[1:] {
			if x < mn {
				mn = x
			}
			if x > mx {
				mx = x
			}
		}
		found = true
	} else {
		for i, x := range vals {
			if arr.IsNull(i) || (mask != nil && !mask[i]) {
				continue
			}
			if !found {
				mn, mx, found = x, x, true
				continue
			}
			if x < mn {
				mn = x
			}
			if x > mx {
				mx = x
			}
		}
	}
	if !found {
		return
	}
	if !a.has {
		a.imin, a.imax, a.has = int64(mn), int64(mx), true
		return
	}
	a.imin = min(a.imin, int64(mn))
	a.imax = max(a.imax, int64(mx))
}

func floatRange[T ~float32 | ~float64](a *leafAcc, vals []T, arr arrow.Array, mask []bool) {
	noNulls := mask == nil && arr.NullN() == 0
	for i, x := range vals {
		if !noNulls && (arr.IsNull(i) || (mask != nil && !mask[i])) {
			continue
		}
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			a.bad = true
			return
		}
		if !a.has {
			a.fmin, a.fmax, a.has = f, f, true
			continue
		}
		if f < a.fmin {
			a.fmin = f
		}
		if f > a.fmax {
			a.fmax = f
		}
	}
}

func stringRange(a *leafAcc, v *array.String, mask []bool) {
	var mn, mx string
	found := false
	noNulls := mask == nil && v.NullN() == 0
	for i := 0; i < v.Len(); i++ {
		if !noNulls && (v.IsNull(i) || (mask != nil && !mask[i])) {
			continue
		}
		x := v.Value(i)
		if !found {
			mn, mx, found = x, x, true
			continue
		}
		if x < mn {
			mn = x
		}
		if x > mx {
			mx = x
		}
	}
	if !found {
		return
	}
	// Value shares the array's buffer: keep copies, and only of the new bounds.
	if !a.has {
		a.smin, a.smax, a.has = strings.Clone(mn), strings.Clone(mx), true
		return
	}
	if mn < a.smin {
		a.smin = strings.Clone(mn)
	}
	if mx > a.smax {
		a.smax = strings.Clone(mx)
	}
}

// json renders the statistics as add.stats.
func (s *fileStats) json() string {
	var b []byte
	b = append(b, `{"numRecords":`...)
	b = strconv.AppendInt(b, s.records, 10)
	for _, part := range []string{"minValues", "maxValues", "nullCount"} {
		obj := s.object(s.plan.cols, part)
		if obj == nil && part != "nullCount" {
			continue
		}
		if obj == nil {
			obj = []byte("{}")
		}
		b = append(b, `,"`...)
		b = append(b, part...)
		b = append(b, `":`...)
		b = append(b, obj...)
	}
	if s.plan.tightBounds {
		b = append(b, `,"tightBounds":true`...)
	}
	b = append(b, '}')
	return string(b)
}

// object renders one of minValues, maxValues, nullCount for cols; nil when it has no entries.
func (s *fileStats) object(cols []*statCol, part string) []byte {
	var b []byte
	for _, c := range cols {
		var v []byte
		if c.leaf < 0 {
			v = s.object(c.children, part)
		} else {
			v = s.value(c, part)
		}
		if v == nil {
			continue
		}
		if b == nil {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = appendJSONString(b, c.name)
		b = append(b, ':')
		b = append(b, v...)
	}
	if b == nil {
		return nil
	}
	return append(b, '}')
}

func (s *fileStats) value(c *statCol, part string) []byte {
	a := &s.leaves[c.leaf]
	if part == "nullCount" {
		return strconv.AppendInt(nil, a.nulls, 10)
	}
	if !c.minmax || !a.has || a.bad {
		return nil
	}
	isMax := part == "maxValues"
	switch t := c.kind.(type) {
	case *txlog.DecimalType:
		d := a.dmin
		if isMax {
			d = a.dmax
		}
		return jsonval.AppendDecimal128(nil, d, int32(t.Scale))
	case *txlog.PrimitiveType:
		switch t.Name {
		case "byte", "short", "integer", "long":
			if isMax {
				return strconv.AppendInt(nil, a.imax, 10)
			}
			return strconv.AppendInt(nil, a.imin, 10)
		case "float", "double":
			bits := 64
			if t.Name == "float" {
				bits = 32
			}
			f := a.fmin
			if isMax {
				f = a.fmax
			}
			return jsonval.AppendFloat(nil, f, bits)
		case "date":
			d := a.imin
			if isMax {
				d = a.imax
			}
			return jsonval.AppendDate(nil, d)
		case "timestamp", "timestamp_ntz":
			var us int64
			if isMax {
				us = ceilDiv(a.imax, 1000) * 1000
			} else {
				us = units.FloorDiv(a.imin, 1000) * 1000
			}
			return jsonval.AppendStatsTimestamp(nil, time.UnixMicro(us), t.Name != "timestamp_ntz")
		case "string":
			if !utf8.ValidString(a.smin) || !utf8.ValidString(a.smax) {
				return nil
			}
			if isMax {
				m, ok := truncateMax(a.smax, stringPrefix)
				if !ok {
					return nil
				}
				return appendJSONString(nil, m)
			}
			return appendJSONString(nil, truncateMin(a.smin, stringPrefix))
		}
	}
	return nil
}

func ceilDiv(a, b int64) int64 { return -units.FloorDiv(-a, b) }

// truncateMin cuts s to its first n characters: a lower bound of s.
func truncateMin(s string, n int) string {
	i := 0
	for k := range s {
		if i == n {
			return s[:k]
		}
		i++
	}
	return s
}

// truncateMax returns a string of about n characters that is >= s in UTF-8 byte order: s itself
// when it is short, else a prefix of s followed by a tie-breaker greater than the character it
// replaces (U+007F for an ASCII character, U+10FFFF otherwise). A prefix is extended, up to 2n
// characters, past characters no tie-breaker exceeds; ok is false when that is not enough.
func truncateMax(s string, n int) (string, bool) {
	if utf8.RuneCountInString(s) <= n {
		return s, true
	}
	count := 0
	for k, r := range s {
		if count >= n {
			switch {
			case r < 0x7f:
				return s[:k] + "\x7f", true
			case r < utf8.MaxRune:
				return s[:k] + string(utf8.MaxRune), true
			}
			if count >= 2*n {
				return "", false
			}
		}
		count++
	}
	return s, true
}

func appendJSONString(b []byte, s string) []byte { return jsonval.AppendString(b, s) }
