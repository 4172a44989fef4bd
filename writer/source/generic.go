package source

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lakehouse/lake/internal/units"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/lakehouse/lake/txlog"
)

// cell is one parsed value of a record, held until every column of the record parsed.
type cell struct {
	null  bool
	s     string
	i     int64
	f     float64
	b     bool
	props []kv
	json  string // complex columns: the JSON text the builder takes
}

// CheckColumns checks a file's column names (a CSV header) against the table: a column the table
// lacks is an error unless MergeSchema adds it (or, for the interaction table, properties keeps
// it).
func (s *Standardizer) CheckColumns(names []string) error {
	if s.interaction || s.opts.MergeSchema {
		return nil
	}
	for _, n := range names {
		if !s.usedTop[n] {
			return &ConfigError{Err: fmt.Errorf("column %q is not in the table (columns: %s)", n, strings.Join(s.colNames(), ", ")),
				Hint: "add --merge-schema to add it to the table, or map the file's columns with --map"}
		}
	}
	return nil
}

func (s *Standardizer) colNames() []string {
	out := make([]string, len(s.cols))
	for i, c := range s.cols {
		out[i] = c.Name
	}
	return out
}

// addGeneric fills the table's columns by name (or mapping), converting each value to its
// column's type; it returns a reason when the record does not fit.
func (s *Standardizer) addGeneric(r record) (string, error) {
	cells := make([]cell, len(s.cols))
	for i := range s.cols {
		c, why := s.parseCell(r, i)
		if why != "" {
			return why, nil
		}
		cells[i] = c
	}
	var unknown []string
	var unknownVals []value
	var why string
	r.each(func(name string, v value) {
		if s.usedTop[name] || why != "" {
			return
		}
		if v.kind == kNull || (v.kind == kStr && v.s == "" && !s.opts.MergeSchema) {
			return
		}
		if !s.opts.MergeSchema {
			why = fmt.Sprintf("field %q is not a column of the table (--merge-schema adds it)", name)
			return
		}
		unknown = append(unknown, name)
		unknownVals = append(unknownVals, v)
	})
	if why != "" {
		return why, nil
	}
	for i := range s.cols {
		s.appendCell(i, cells[i])
	}
	for j, name := range unknown {
		e := s.extraColumn(name)
		if len(unknownVals[j].s) > 1<<20 {
			unknownVals[j].s = unknownVals[j].s[:1<<20]
		}
		e.Append(unknownVals[j].s)
	}
	s.n++
	for _, e := range s.extra {
		for e.Len() < s.n {
			e.AppendNull()
		}
	}
	s.count.Written++
	return "", nil
}

// appendGeneric parses and appends column i of r (for columns beyond the standard ones of a
// widened interaction table); it returns a reason when the value does not parse.
func (s *Standardizer) appendGeneric(r record, i int) string {
	c, why := s.parseCell(r, i)
	if why != "" {
		return why
	}
	s.appendCell(i, c)
	return ""
}

func (s *Standardizer) extraColumn(name string) *array.StringBuilder {
	for i, f := range s.schema.Fields()[len(s.cols):] {
		if f.Name == name {
			return s.extra[i]
		}
	}
	name = strings.Clone(name) // the schema keeps it; the record's fields are views of its line
	b := array.NewStringBuilder(s.mem)
	for b.Len() < s.n {
		b.AppendNull()
	}
	s.extra = append(s.extra, b)
	fields := append(slices.Clone(s.schema.Fields()), arrow.Field{Name: name, Type: arrow.BinaryTypes.String, Nullable: true})
	s.schema = arrow.NewSchema(fields, nil)
	return b
}

// withExtra adds the MergeSchema columns to rec and resets the schema to the table's.
func (s *Standardizer) withExtra(rec arrow.RecordBatch) arrow.RecordBatch {
	cols := slices.Clone(rec.Columns())
	for _, e := range s.extra {
		for e.Len() < s.n {
			e.AppendNull()
		}
		a := e.NewArray()
		defer a.Release()
		cols = append(cols, a)
	}
	out := array.NewRecordBatch(s.schema, cols, rec.NumRows())
	rec.Release()
	s.schema = arrow.NewSchema(s.schema.Fields()[:len(s.cols)], nil)
	return out
}

func (s *Standardizer) parseCell(r record, i int) (cell, string) {
	f := s.cols[i]
	v, ok := s.lookup(r, s.specs[i])
	if ok && v.kind == kStr && v.s == "" && f.Type != txlog.String {
		ok = false // an empty CSV cell is null for every type but string
	}
	if !ok {
		if !f.Nullable {
			return cell{}, "missing " + f.Name + s.from(i)
		}
		return cell{null: true}, ""
	}
	if s.complex[i] != nil {
		text := v.s
		if v.kind == kStr && !isJSONComposite(text) {
			b, _ := json.Marshal(text)
			text = string(b)
		}
		tb := s.complex[i]
		if err := tb.UnmarshalJSON([]byte("[" + text + "]")); err != nil {
			return cell{}, fmt.Sprintf("%s: %.80q is not a %s", f.Name, v.s, txlog.TypeString(f.Type))
		}
		tb.NewArray().Release()
		return cell{json: text}, ""
	}
	bad := func() (cell, string) {
		return cell{}, fmt.Sprintf("%s: %.80q is not a %s", f.Name, v.s, txlog.TypeString(f.Type))
	}
	t := strings.TrimSpace(v.s)
	switch typ := f.Type.(type) {
	case *txlog.MapType:
		props, why := mapCell(v)
		if why != "" {
			return cell{}, f.Name + ": " + why
		}
		return cell{props: props}, ""
	case *txlog.PrimitiveType:
		switch typ.Name {
		case "string":
			return cell{s: v.s}, "" // objects and arrays as their JSON text
		case "long", "integer", "short", "byte":
			if v.kind == kBool || v.kind == kObj || v.kind == kArr {
				return bad()
			}
			n, err := strconv.ParseInt(t, 10, 64)
			if err != nil {
				return bad()
			}
			bits := map[string]int{"long": 64, "integer": 32, "short": 16, "byte": 8}[typ.Name]
			if bits < 64 && (n < -(1<<(bits-1)) || n >= 1<<(bits-1)) {
				return cell{}, fmt.Sprintf("%s: %s is out of range for %s", f.Name, t, typ.Name)
			}
			return cell{i: n}, ""
		case "double", "float":
			if v.kind == kBool || v.kind == kObj || v.kind == kArr {
				return bad()
			}
			x, err := strconv.ParseFloat(t, 64)
			if err != nil {
				return bad()
			}
			if typ.Name == "float" && !math.IsInf(x, 0) && math.Abs(x) > math.MaxFloat32 {
				return cell{}, fmt.Sprintf("%s: %s is out of range for float", f.Name, t)
			}
			return cell{f: x}, ""
		case "boolean":
			switch strings.ToLower(t) {
			case "true", "1", "t", "yes":
				return cell{b: true}, ""
			case "false", "0", "f", "no":
				return cell{b: false}, ""
			}
			return bad()
		case "date":
			if v.kind != kStr {
				return bad()
			}
			d, err := time.Parse("2006-01-02", t)
			if err != nil {
				return bad()
			}
			return cell{i: units.FloorDiv(d.Unix(), 86400)}, ""
		case "timestamp", "timestamp_ntz":
			us, err := s.ts.parse(t, v.kind == kNum)
			if err != nil {
				if err == ErrNumericTimestamp {
					return cell{}, f.Name + ": " + err.Error() + " (--timestamp-format)"
				}
				return cell{}, f.Name + ": " + err.Error()
			}
			return cell{i: us}, ""
		}
	}
	return bad()
}

func isJSONComposite(s string) bool {
	t := strings.TrimSpace(s)
	return t != "" && (t[0] == '{' || t[0] == '[')
}

// mapCell reads a map<string,string> value from a JSON object (or a CSV cell holding one).
func mapCell(v value) ([]kv, string) {
	obj := v.obj
	if v.kind == kStr {
		d := json.NewDecoder(strings.NewReader(v.s))
		d.UseNumber()
		if err := d.Decode(&obj); err != nil {
			return nil, fmt.Sprintf("%.60q is not a JSON object", v.s)
		}
	} else if v.kind != kObj {
		return nil, "not a JSON object"
	}
	out := make([]kv, 0, len(obj))
	for k, x := range obj {
		jv := jsonValue(x)
		if jv.kind == kNull {
			out = append(out, kv{k: k})
			continue
		}
		str := jv.s
		out = append(out, kv{k: k, v: &str})
	}
	slices.SortFunc(out, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	return out, ""
}

func (s *Standardizer) appendCell(i int, c cell) {
	b := s.bld.Field(i)
	if c.null {
		b.AppendNull()
		return
	}
	if s.complex[i] != nil {
		_ = b.UnmarshalJSON([]byte("[" + c.json + "]")) // parsed once already by parseCell
		return
	}
	switch x := b.(type) {
	case *array.StringBuilder:
		x.Append(c.s)
	case *array.Int64Builder:
		x.Append(c.i)
	case *array.Int32Builder:
		x.Append(int32(c.i))
	case *array.Int16Builder:
		x.Append(int16(c.i))
	case *array.Int8Builder:
		x.Append(int8(c.i))
	case *array.Float64Builder:
		x.Append(c.f)
	case *array.Float32Builder:
		x.Append(float32(c.f))
	case *array.BooleanBuilder:
		x.Append(c.b)
	case *array.Date32Builder:
		x.Append(arrow.Date32(c.i))
	case *array.TimestampBuilder:
		x.Append(arrow.Timestamp(c.i))
	case *array.MapBuilder:
		appendProps(x, c.props)
	default:
		b.AppendNull()
	}
}
