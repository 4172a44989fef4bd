// Package rowfmt writes Arrow record batches as rows of text: the output formats of `lake cat`
// (docs: CONTRACT.md, "Output formats").
//
//   - jsonl: one JSON object per row, keys in the schema's column order. Timestamps are RFC 3339
//     in UTC with six fractional digits (2024-01-02T03:04:05.123456Z; a timestamp without a zone,
//     timestamp_ntz, the same without the Z), dates YYYY-MM-DD, decimals strings with the
//     column's scale ("-5.67800"), binary standard base64, floats in Go's shortest form (as
//     encoding/json prints them), NaN and infinities the strings "NaN", "Infinity",
//     "-Infinity", nulls null, structs objects, lists arrays, maps objects keyed by the key's
//     text.
//   - csv: a header row of column names, then one record per row (RFC 4180). Scalars as in
//     jsonl but unquoted; null is the empty field; nested values are their jsonl JSON.
//   - table: aligned columns for a terminal, with a header and a rule. Column widths come from
//     the first rows (up to 1,000); later, wider values widen their cell only.
//
// # Errors
//
// NewWriter fails for an unknown format (the error lists the known ones). Write returns the
// underlying writer's error, or an error for a record whose schema differs from the writer's.
//
// # Concurrency
//
// A RowWriter is not safe for concurrent use.
package rowfmt

import (
	"bufio"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/lakehouse/lake/internal/jsonval"
	"github.com/lakehouse/lake/internal/units"
)

// Formats are the format names NewWriter accepts.
var Formats = []string{"jsonl", "csv", "table"}

// RowWriter writes the rows of record batches. Output is buffered: call Flush at the end (and
// check its error).
type RowWriter interface {
	// Write writes every row of rec. The writer does not keep rec.
	Write(rec arrow.RecordBatch) error
	// Flush writes what is buffered to the underlying writer.
	Flush() error
}

// NewWriter returns a RowWriter for format ("jsonl", "csv" or "table") writing records of
// schema to w.
func NewWriter(w io.Writer, format string, schema *arrow.Schema) (RowWriter, error) {
	if schema == nil {
		return nil, errors.New("rowfmt: nil schema")
	}
	switch format {
	case "jsonl", "json", "ndjson":
		return &jsonlWriter{w: bufio.NewWriterSize(w, 64<<10), schema: schema}, nil
	case "csv":
		cw := csv.NewWriter(w)
		return &csvWriter{w: cw, schema: schema}, nil
	case "table":
		return &tableWriter{w: bufio.NewWriter(w), schema: schema}, nil
	}
	return nil, fmt.Errorf("rowfmt: unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

func checkSchema(want *arrow.Schema, rec arrow.RecordBatch) error {
	if !want.Equal(rec.Schema()) {
		return fmt.Errorf("rowfmt: record schema %s differs from the writer's %s", rec.Schema(), want)
	}
	return nil
}

// jsonlWriter writes one JSON object per row.
type jsonlWriter struct {
	w      *bufio.Writer
	schema *arrow.Schema
	buf    []byte
	keys   [][]byte
}

func (j *jsonlWriter) Write(rec arrow.RecordBatch) error {
	if err := checkSchema(j.schema, rec); err != nil {
		return err
	}
	if j.keys == nil {
		for _, f := range j.schema.Fields() {
			k := appendJSONString(nil, f.Name)
			j.keys = append(j.keys, append(k, ':'))
		}
	}
	cols := rec.Columns()
	for r := 0; r < int(rec.NumRows()); r++ {
		b := j.buf[:0]
		b = append(b, '{')
		for c, col := range cols {
			if c > 0 {
				b = append(b, ',')
			}
			b = append(b, j.keys[c]...)
			b = AppendJSON(b, col, r)
		}
		b = append(b, '}', '\n')
		j.buf = b
		if _, err := j.w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func (j *jsonlWriter) Flush() error { return j.w.Flush() }

// AppendJSON appends the JSON of row i of arr, as the jsonl format writes it.
func AppendJSON(b []byte, arr arrow.Array, i int) []byte {
	if arr.IsNull(i) {
		return append(b, "null"...)
	}
	switch a := arr.(type) {
	case *array.Boolean:
		return strconv.AppendBool(b, a.Value(i))
	case *array.Int8:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int16:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int32:
		return strconv.AppendInt(b, int64(a.Value(i)), 10)
	case *array.Int64:
		return strconv.AppendInt(b, a.Value(i), 10)
	case *array.Uint8:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Uint16:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Uint32:
		return strconv.AppendUint(b, uint64(a.Value(i)), 10)
	case *array.Uint64:
		return strconv.AppendUint(b, a.Value(i), 10)
	case *array.Float32:
		return appendFloat(b, float64(a.Value(i)), 32)
	case *array.Float64:
		return appendFloat(b, a.Value(i), 64)
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		b = append(b, '{')
		for k := 0; k < a.NumField(); k++ {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, st.Field(k).Name)
			b = append(b, ':')
			b = AppendJSON(b, a.Field(k), i)
		}
		return append(b, '}')
	case *array.Map:
		keys, items := a.Keys(), a.Items()
		start, end := a.ValueOffsets(i)
		b = append(b, '{')
		for k := start; k < end; k++ {
			if k > start {
				b = append(b, ',')
			}
			b = appendJSONString(b, Text(keys, int(k)))
			b = append(b, ':')
			b = AppendJSON(b, items, int(k))
		}
		return append(b, '}')
	case array.ListLike:
		vals := a.ListValues()
		start, end := a.ValueOffsets(i)
		b = append(b, '[')
		for k := start; k < end; k++ {
			if k > start {
				b = append(b, ',')
			}
			b = AppendJSON(b, vals, int(k))
		}
		return append(b, ']')
	case *array.Dictionary:
		return AppendJSON(b, a.Dictionary(), a.GetValueIndex(i))
	}
	if s, ok := scalarText(arr, i); ok {
		return appendJSONString(b, s)
	}
	// Anything else: arrow's own text for the value.
	return appendJSONString(b, arr.ValueStr(i))
}

// scalarText is the text of the scalar types JSON writes as strings.
func scalarText(arr arrow.Array, i int) (string, bool) {
	switch a := arr.(type) {
	case *array.String:
		return a.Value(i), true
	case *array.LargeString:
		return a.Value(i), true
	case *array.StringView:
		return a.Value(i), true
	case *array.Binary:
		return base64.StdEncoding.EncodeToString(a.Value(i)), true
	case *array.LargeBinary:
		return base64.StdEncoding.EncodeToString(a.Value(i)), true
	case *array.BinaryView:
		return base64.StdEncoding.EncodeToString(a.Value(i)), true
	case *array.FixedSizeBinary:
		return base64.StdEncoding.EncodeToString(a.Value(i)), true
	case *array.Date32:
		return FormatDate(int64(a.Value(i))), true
	case *array.Date64:
		return FormatDate(units.FloorDiv(int64(a.Value(i)), 86_400_000)), true
	case *array.Timestamp:
		t := a.DataType().(*arrow.TimestampType)
		return FormatTimestamp(units.Micros(int64(a.Value(i)), t.Unit), t.TimeZone != ""), true
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale), true
	case *array.Decimal256:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal256Type).Scale), true
	}
	return "", false
}

// Text is the text of row i of arr as csv and table print it and as map keys appear in JSON:
// strings as they are, other scalars as in jsonl without quotes, nested values as JSON, null as
// "".
func Text(arr arrow.Array, i int) string {
	if arr.IsNull(i) {
		return ""
	}
	if s, ok := scalarText(arr, i); ok {
		return s
	}
	switch a := arr.(type) {
	case *array.Float32:
		return formatFloat(float64(a.Value(i)), 32)
	case *array.Float64:
		return formatFloat(a.Value(i), 64)
	}
	return string(AppendJSON(nil, arr, i))
}

// FormatDate formats days since 1970-01-01 as YYYY-MM-DD.
func FormatDate(days int64) string {
	return time.Unix(days*86400, 0).UTC().Format("2006-01-02")
}

// FormatTimestamp formats microseconds since the epoch as 2006-01-02T15:04:05.000000Z (UTC), or
// without the Z for a zone-less timestamp.
func FormatTimestamp(us int64, utc bool) string {
	t := time.Unix(units.FloorDiv(us, 1e6), (us-units.FloorDiv(us, 1e6)*1e6)*1000).UTC()
	if utc {
		return t.Format("2006-01-02T15:04:05.000000Z")
	}
	return t.Format("2006-01-02T15:04:05.000000")
}

func appendFloat(b []byte, f float64, bits int) []byte { return jsonval.AppendFloat(b, f, bits) }

func formatFloat(f float64, bits int) string { return string(jsonval.AppendFloatText(nil, f, bits)) }

func appendJSONString(b []byte, s string) []byte { return jsonval.AppendString(b, s) }

// csvWriter writes a header and one CSV record per row.
type csvWriter struct {
	w      *csv.Writer
	schema *arrow.Schema
	header bool
	row    []string
}

func (c *csvWriter) writeHeader() error {
	if c.header {
		return nil
	}
	c.header = true
	names := make([]string, len(c.schema.Fields()))
	for i, f := range c.schema.Fields() {
		names[i] = f.Name
	}
	return c.w.Write(names)
}

func (c *csvWriter) Write(rec arrow.RecordBatch) error {
	if err := checkSchema(c.schema, rec); err != nil {
		return err
	}
	if err := c.writeHeader(); err != nil {
		return err
	}
	cols := rec.Columns()
	if c.row == nil {
		c.row = make([]string, len(cols))
	}
	for r := 0; r < int(rec.NumRows()); r++ {
		for k, col := range cols {
			c.row[k] = Text(col, r)
		}
		if err := c.w.Write(c.row); err != nil {
			return err
		}
	}
	return nil
}

func (c *csvWriter) Flush() error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	c.w.Flush()
	return c.w.Error()
}

// tableWriter prints aligned columns.
type tableWriter struct {
	w       *bufio.Writer
	schema  *arrow.Schema
	pending [][]string // rows held until the widths are known
	widths  []int
	started bool
}

const tableSampleRows = 1000

func (t *tableWriter) Write(rec arrow.RecordBatch) error {
	if err := checkSchema(t.schema, rec); err != nil {
		return err
	}
	cols := rec.Columns()
	for r := 0; r < int(rec.NumRows()); r++ {
		row := make([]string, len(cols))
		for k, col := range cols {
			if col.IsNull(r) {
				row[k] = "null"
			} else {
				row[k] = cellText(Text(col, r))
			}
		}
		if t.started {
			if err := t.writeRow(row); err != nil {
				return err
			}
			continue
		}
		t.pending = append(t.pending, row)
		if len(t.pending) >= tableSampleRows {
			if err := t.start(); err != nil {
				return err
			}
		}
	}
	return nil
}

// cellText keeps a cell on one line.
func cellText(s string) string {
	if strings.ContainsAny(s, "\n\r\t") {
		s = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s)
	}
	return s
}

func (t *tableWriter) start() error {
	t.started = true
	fields := t.schema.Fields()
	t.widths = make([]int, len(fields))
	header := make([]string, len(fields))
	for i, f := range fields {
		header[i] = f.Name
		t.widths[i] = utf8.RuneCountInString(f.Name)
	}
	for _, row := range t.pending {
		for i, s := range row {
			t.widths[i] = max(t.widths[i], utf8.RuneCountInString(s))
		}
	}
	if err := t.writeRow(header); err != nil {
		return err
	}
	rule := make([]string, len(fields))
	for i, w := range t.widths {
		rule[i] = strings.Repeat("-", w)
	}
	if err := t.writeRow(rule); err != nil {
		return err
	}
	for _, row := range t.pending {
		if err := t.writeRow(row); err != nil {
			return err
		}
	}
	t.pending = nil
	return nil
}

func (t *tableWriter) writeRow(row []string) error {
	var sb strings.Builder
	for i, s := range row {
		if i > 0 {
			sb.WriteString("  ")
		}
		sb.WriteString(s)
		if i < len(row)-1 {
			if pad := t.widths[i] - utf8.RuneCountInString(s); pad > 0 {
				sb.WriteString(strings.Repeat(" ", pad))
			}
		}
	}
	sb.WriteByte('\n')
	_, err := t.w.WriteString(sb.String())
	return err
}

func (t *tableWriter) Flush() error {
	if !t.started {
		if err := t.start(); err != nil {
			return err
		}
	}
	return t.w.Flush()
}
