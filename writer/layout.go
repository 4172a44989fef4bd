package writer

import (
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/txlog"
)

// layout is how a table's rows map to data files: the logical schema records arrive in, the
// partition columns, and the physical schema of the files.
type layout struct {
	schema   *txlog.StructType // logical
	input    *arrow.Schema     // logical Arrow schema: every column, partition columns included
	parts    []partCol
	data     []int            // positions in schema.Fields of the data (non-partition) columns
	file     *arrow.Schema    // the data files' Arrow schema: physical names and field ids
	physical []arrow.DataType // file's field types, per data column
	stats    *statsPlan
	mapping  string // delta.columnMapping.mode: "none", "name" or "id"
}

type partCol struct {
	name string // logical
	phys string // physical: the partitionValues key and folder name
	pos  int    // position in schema.Fields
	typ  txlog.DataType
}

func newLayout(md txlog.Metadata, proto txlog.Protocol) (*layout, error) {
	st, err := txlog.ParseSchema(md.SchemaString)
	if err != nil {
		return nil, err
	}
	mode := md.Configuration["delta.columnMapping.mode"]
	switch mode {
	case "", "none":
		mode = "none"
	case "name", "id":
	default:
		return nil, &txlog.UnsupportedFeatureError{Feature: "columnMapping mode " + strconv.Quote(mode), Write: true}
	}
	in, err := deltaarrow.Schema(st)
	if err != nil {
		return nil, fmt.Errorf("table schema: %w", err)
	}
	l := &layout{schema: st, input: in, mapping: mode}
	isPart := map[string]bool{}
	for _, c := range md.PartitionColumns {
		i := st.FieldIndex(c)
		if i < 0 {
			return nil, fmt.Errorf("partition column %q is not in the table schema", c)
		}
		f := st.Fields[i]
		switch f.Type.(type) {
		case *txlog.StructType, *txlog.ArrayType, *txlog.MapType:
			return nil, fmt.Errorf("partition column %q has type %s, which cannot be a partition column", c, typeString(f.Type))
		}
		l.parts = append(l.parts, partCol{name: c, phys: physicalName(f, mode), pos: i, typ: f.Type})
		isPart[c] = true
	}
	var fields []arrow.Field
	var dataFields []txlog.StructField
	for i, f := range st.Fields {
		if isPart[f.Name] {
			continue
		}
		af, err := l.physicalField(f)
		if err != nil {
			return nil, err
		}
		l.data = append(l.data, i)
		fields = append(fields, af)
		l.physical = append(l.physical, af.Type)
		dataFields = append(dataFields, f)
	}
	l.file = arrow.NewSchema(fields, nil)
	tight := proto.HasReaderFeature("deletionVectors") || proto.HasWriterFeature("deletionVectors")
	l.stats = newStatsPlan(dataFields, md.Configuration, mode, tight)
	return l, nil
}

// physicalName is the name of f in data files, partitionValues and stats: its physical name
// under column mapping, else its name (a physicalName in the metadata of a table whose mapping
// mode is none is ignored).
func physicalName(f txlog.StructField, mode string) string {
	if mode == "" || mode == "none" {
		return f.Name
	}
	return f.PhysicalName()
}

// physicalField is f as the data files hold it: under column mapping, the physical name and
// the field id (PARQUET:field_id, which pqarrow writes into the Parquet schema).
func (l *layout) physicalField(f txlog.StructField) (arrow.Field, error) {
	t, err := l.physicalType(f.Type)
	if err != nil {
		return arrow.Field{}, fmt.Errorf("column %q: %w", f.Name, err)
	}
	af := arrow.Field{Name: f.Name, Type: t, Nullable: f.Nullable}
	if l.mapping != "none" {
		af.Name = f.PhysicalName()
		if id := f.ColumnMappingID(); id > 0 {
			af.Metadata = arrow.NewMetadata([]string{"PARQUET:field_id"}, []string{strconv.FormatInt(id, 10)})
		}
	}
	return af, nil
}

func (l *layout) physicalType(t txlog.DataType) (arrow.DataType, error) {
	switch v := t.(type) {
	case *txlog.StructType:
		fields := make([]arrow.Field, len(v.Fields))
		for i, f := range v.Fields {
			af, err := l.physicalField(f)
			if err != nil {
				return nil, err
			}
			fields[i] = af
		}
		return arrow.StructOf(fields...), nil
	case *txlog.ArrayType:
		et, err := l.physicalType(v.ElementType)
		if err != nil {
			return nil, err
		}
		return arrow.ListOfField(arrow.Field{Name: "element", Type: et, Nullable: v.ContainsNull}), nil
	case *txlog.MapType:
		kt, err := l.physicalType(v.KeyType)
		if err != nil {
			return nil, err
		}
		vt, err := l.physicalType(v.ValueType)
		if err != nil {
			return nil, err
		}
		m := arrow.MapOf(kt, vt)
		m.SetItemNullable(v.ValueContainsNull)
		return m, nil
	}
	return deltaarrow.Type(t)
}

// timestampPaths are the Parquet column paths of the timestamp columns that are top-level or in
// structs.
func (l *layout) timestampPaths() []string {
	var out []string
	var walk func(fields []arrow.Field, prefix string)
	walk = func(fields []arrow.Field, prefix string) {
		for _, f := range fields {
			switch t := f.Type.(type) {
			case *arrow.TimestampType:
				out = append(out, prefix+f.Name)
			case *arrow.StructType:
				walk(t.Fields(), prefix+f.Name+".")
			}
		}
	}
	walk(l.file.Fields(), "")
	return out
}
