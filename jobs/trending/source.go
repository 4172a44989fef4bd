package trending

import (
	"fmt"
	"math"
	"slices"

	"github.com/lakehouse/lake/internal/units"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/txlog"
)

// CategoryKey is the key of properties that names an item's category.
const CategoryKey = "category"

// requiredColumns are the columns the job reads; properties is read too when the source has it
// as a map of strings (for the category).
var requiredColumns = []string{"user_id", "item_id", "interaction_type", "timestamp"}

// columnsOf checks the schema and returns the columns to read: value too with CountValue.
func columnsOf(uri string, schema *txlog.StructType, count string) ([]string, error) {
	var missing []string
	required := requiredColumns
	if count == CountValue {
		required = append(slices.Clip(required), "value")
	}
	for _, c := range required {
		if _, ok := schema.Field(c); !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, &jobs.MissingColumnsError{URI: uri, Missing: missing}
	}
	cols := append([]string(nil), required...)
	if f, ok := schema.Field("properties"); ok {
		if m, ok := f.Type.(*txlog.MapType); ok && m.KeyType == txlog.String && m.ValueType == txlog.String {
			cols = append(cols, "properties")
		}
	}
	return cols, nil
}

// addRecord feeds the rows of one record batch (the columns columnsOf names, found by name) to
// the detector. Rows with a null user, item, type or time are skipped and counted; a null
// value is the detector's to count (CountValue counts it 0).
func addRecord(uri string, det *Detector, rec arrow.RecordBatch) (rows, skipped int64, err error) {
	col := func(name string) arrow.Array {
		if ix := rec.Schema().FieldIndices(name); len(ix) > 0 {
			return rec.Column(ix[0])
		}
		return array.NewNull(int(rec.NumRows())) // released with nothing: a Null array holds no buffers
	}
	u, ok1 := col("user_id").(*array.String)
	it, ok2 := col("item_id").(*array.String)
	ty, ok3 := col("interaction_type").(*array.String)
	ts, ok4 := col("timestamp").(*array.Timestamp)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, 0, fmt.Errorf("%s: the interaction columns have types %s, %s, %s, %s; want string, string, string, timestamp",
			uri, col("user_id").DataType(), col("item_id").DataType(), col("interaction_type").DataType(), col("timestamp").DataType())
	}
	unit := ts.DataType().(*arrow.TimestampType).Unit
	var val *array.Float64
	if ix := rec.Schema().FieldIndices("value"); len(ix) > 0 {
		v, ok := rec.Column(ix[0]).(*array.Float64)
		if !ok {
			return 0, 0, fmt.Errorf("%s: the value column has type %s; want double", uri, rec.Column(ix[0]).DataType())
		}
		val = v
	}
	var props *array.Map
	var pk, pv *array.String
	if ix := rec.Schema().FieldIndices("properties"); len(ix) > 0 {
		if m, ok := rec.Column(ix[0]).(*array.Map); ok {
			k, ok1 := m.Keys().(*array.String)
			v, ok2 := m.Items().(*array.String)
			if ok1 && ok2 {
				props, pk, pv = m, k, v
			}
		}
	}
	n := int(rec.NumRows())
	for i := range n {
		if u.IsNull(i) || it.IsNull(i) || ty.IsNull(i) || ts.IsNull(i) {
			skipped++
			continue
		}
		cat := ""
		if props != nil && props.IsValid(i) {
			start, end := props.ValueOffsets(i)
			for j := start; j < end; j++ {
				if pk.Value(int(j)) == CategoryKey && pv.IsValid(int(j)) {
					cat = pv.Value(int(j))
					break
				}
			}
		}
		v := math.NaN()
		if val != nil && val.IsValid(i) {
			v = val.Value(i)
		}
		det.AddValue(u.Value(i), it.Value(i), ty.Value(i), units.Micros(int64(ts.Value(i)), unit), v, cat)
	}
	return int64(n) - skipped, skipped, nil
}
