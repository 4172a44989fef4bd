package checkpoint

// stats_parsed as JSON stats: the struct a checkpoint may hold beside (or instead of) add.stats,
// rendered as the JSON string Spark writes, through the one JSON renderer (internal/jsonval).

import (
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/lakehouse/lake/internal/jsonval"
)

// ---- stats_parsed to JSON --------------------------------------------------------------------

// pqStatsJSON renders the stats_parsed struct of a batch as the JSON stats string, in the order
// Spark writes it: numRecords, minValues, maxValues, nullCount, tightBounds. Null values are left
// out, as are values of types JSON stats do not hold (binary, arrays, maps, variants).
type pqStatsJSON struct {
	arr  *array.Struct
	obj  pqJSONObj
	buf  []byte
	offs []int32 // offs[i]..offs[i+1] is row i's JSON in buf; -1 for null
	s    string
	done bool
}

type pqJSONWriter func(b []byte, i int) []byte

type pqJSONField struct {
	key   []byte // "name":
	arr   arrow.Array
	write pqJSONWriter
}

type pqJSONObj struct{ fields []pqJSONField }

func (o *pqJSONObj) write(b []byte, i int) []byte {
	b = append(b, '{')
	first := true
	for k := range o.fields {
		f := &o.fields[k]
		if f.arr.IsNull(i) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, f.key...)
		b = f.write(b, i)
	}
	return append(b, '}')
}

func newPQStatsJSON(st *array.Struct) *pqStatsJSON {
	typ := st.DataType().(*arrow.StructType)
	j := &pqStatsJSON{arr: st}
	for _, name := range []string{"numRecords", "minValues", "maxValues", "nullCount", "tightBounds"} {
		idx, ok := typ.FieldIdx(name)
		if !ok {
			continue
		}
		child := st.Field(idx)
		w := pqJSONCompile(child)
		if w == nil {
			continue
		}
		j.obj.fields = append(j.obj.fields, pqJSONField{key: pqJSONKey(name), arr: child, write: w})
	}
	return j
}

// get renders every row of the batch on first use and returns row i's JSON ("" when null).
func (j *pqStatsJSON) get(i int) string {
	if !j.done {
		n := j.arr.Len()
		j.offs = make([]int32, n+1)
		for r := 0; r < n; r++ {
			j.offs[r] = int32(len(j.buf))
			if j.arr.IsValid(r) {
				j.buf = j.obj.write(j.buf, r)
			}
		}
		j.offs[n] = int32(len(j.buf))
		j.s = string(j.buf)
		j.buf = nil
		j.done = true
	}
	return j.s[j.offs[i]:j.offs[i+1]]
}

func pqJSONKey(name string) []byte {
	b := jsonval.AppendString(nil, name)
	return append(b, ':')
}

func pqJSONCompile(a arrow.Array) pqJSONWriter {
	switch v := a.(type) {
	case *array.Struct:
		typ := v.DataType().(*arrow.StructType)
		if pqIsVariant(typ) {
			return nil
		}
		obj := &pqJSONObj{}
		for k, f := range typ.Fields() {
			child := v.Field(k)
			w := pqJSONCompile(child)
			if w == nil {
				continue
			}
			obj.fields = append(obj.fields, pqJSONField{key: pqJSONKey(f.Name), arr: child, write: w})
		}
		return obj.write
	case *array.Int64:
		return func(b []byte, i int) []byte { return strconv.AppendInt(b, v.Value(i), 10) }
	case *array.Int32:
		return func(b []byte, i int) []byte { return strconv.AppendInt(b, int64(v.Value(i)), 10) }
	case *array.Int16:
		return func(b []byte, i int) []byte { return strconv.AppendInt(b, int64(v.Value(i)), 10) }
	case *array.Int8:
		return func(b []byte, i int) []byte { return strconv.AppendInt(b, int64(v.Value(i)), 10) }
	case *array.Uint64:
		return func(b []byte, i int) []byte { return strconv.AppendUint(b, v.Value(i), 10) }
	case *array.Uint32:
		return func(b []byte, i int) []byte { return strconv.AppendUint(b, uint64(v.Value(i)), 10) }
	case *array.Uint16:
		return func(b []byte, i int) []byte { return strconv.AppendUint(b, uint64(v.Value(i)), 10) }
	case *array.Uint8:
		return func(b []byte, i int) []byte { return strconv.AppendUint(b, uint64(v.Value(i)), 10) }
	case *array.Float64:
		return func(b []byte, i int) []byte { return jsonval.AppendFloat(b, v.Value(i), 64) }
	case *array.Float32:
		return func(b []byte, i int) []byte { return jsonval.AppendFloat(b, float64(v.Value(i)), 32) }
	case *array.Boolean:
		return func(b []byte, i int) []byte { return strconv.AppendBool(b, v.Value(i)) }
	case *array.String:
		return func(b []byte, i int) []byte { return jsonval.AppendString(b, v.Value(i)) }
	case *array.LargeString:
		return func(b []byte, i int) []byte { return jsonval.AppendString(b, v.Value(i)) }
	case *array.StringView:
		return func(b []byte, i int) []byte { return jsonval.AppendString(b, v.Value(i)) }
	case *array.Date32:
		return func(b []byte, i int) []byte { return jsonval.AppendDate(b, int64(v.Value(i))) }
	case *array.Date64:
		return func(b []byte, i int) []byte {
			ms := int64(v.Value(i))
			days := ms / 86_400_000
			if ms%86_400_000 < 0 {
				days--
			}
			return jsonval.AppendDate(b, days)
		}
	case *array.Timestamp:
		// Always with a Z: Spark writes the stats_parsed timestamps of timestamp columns
		// without isAdjustedToUTC, so the Parquet type cannot tell timestamp_ntz apart, and its
		// JSON stats carry the Z (the checkpoints of the conformance corpus agree).
		unit := v.DataType().(*arrow.TimestampType).Unit
		return func(b []byte, i int) []byte {
			return jsonval.AppendStatsTimestamp(b, pqTime(int64(v.Value(i)), unit), true)
		}
	case *array.Decimal128:
		scale := v.DataType().(*arrow.Decimal128Type).Scale
		return func(b []byte, i int) []byte { return jsonval.AppendDecimal128(b, v.Value(i), scale) }
	case *array.Decimal256:
		scale := v.DataType().(*arrow.Decimal256Type).Scale
		return func(b []byte, i int) []byte { return jsonval.AppendDecimalBig(b, v.Value(i).BigInt(), scale) }
	case *array.Decimal64:
		scale := v.DataType().(*arrow.Decimal64Type).Scale
		return func(b []byte, i int) []byte { return jsonval.AppendDecimalInt(b, int64(v.Value(i)), scale) }
	case *array.Decimal32:
		scale := v.DataType().(*arrow.Decimal32Type).Scale
		return func(b []byte, i int) []byte { return jsonval.AppendDecimalInt(b, int64(v.Value(i)), scale) }
	}
	return nil
}

// pqTime is a timestamp of the unit as a time.
func pqTime(v int64, unit arrow.TimeUnit) time.Time {
	switch unit {
	case arrow.Second:
		return time.Unix(v, 0)
	case arrow.Millisecond:
		return time.UnixMilli(v)
	case arrow.Microsecond:
		return time.UnixMicro(v)
	}
	return time.Unix(0, v)
}

// pqIsVariant reports whether a stats struct is a Parquet variant (metadata and value binaries),
// whose JSON form (z85) this decoder does not produce.
func pqIsVariant(t *arrow.StructType) bool {
	if t.NumFields() < 2 {
		return false
	}
	_, m := t.FieldIdx("metadata")
	_, v := t.FieldIdx("value")
	if !m || !v {
		return false
	}
	f, _ := t.FieldByName("metadata")
	return f.Type.ID() == arrow.BINARY || f.Type.ID() == arrow.LARGE_BINARY || f.Type.ID() == arrow.BINARY_VIEW
}
