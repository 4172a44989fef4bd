package writer

import (
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/txlog"
)

// This file is the writer's side of the Type Widening table feature. Tables with the feature are
// written like any other: records are conformed to the current (wide) types. With MergeSchema,
// an input column whose type is a supported widening of the table column's type widens the
// column in the commit: the field's metadata records the change in delta.typeChanges, the table
// property delta.enableTypeWidening becomes true, and the protocol gains the typeWidening
// feature when it has neither it nor typeWidening-preview. Files written before the change keep
// the narrow type; readers widen their values.

// enableTypeWidening is the table property that allows widening type changes.
const enableTypeWidening = "delta.enableTypeWidening"

// schemaMerge carries what merging an input schema into the table's needs and finds.
type schemaMerge struct {
	mapping bool   // column mapping: new fields get ids and physical names
	maxID   *int64 // delta.columnMapping.maxColumnId, advanced for new fields
	version int64  // the version the commit will likely get, for typeChanges' tableVersion
	widened bool   // a column's type was widened
}

// widenType returns the table type tt widened to fit the input's Arrow type at, and the type
// changes that makes (fieldPath relative to the nearest struct field). Input types that conform
// to tt already (equal or narrower) change nothing; a type that neither conforms nor is a
// supported widening is a *SchemaError. Struct fields are merged by mergeStruct, not here.
func (m *schemaMerge) widenType(tt txlog.DataType, at arrow.DataType, path, fieldPath string) (txlog.DataType, []deltaarrow.TypeChange, error) {
	if d, ok := at.(*arrow.DictionaryType); ok {
		at = d.ValueType
	}
	join := func(p, s string) string {
		if p == "" {
			return s
		}
		return p + "." + s
	}
	switch t := tt.(type) {
	case *txlog.StructType:
		return tt, nil, nil
	case *txlog.ArrayType:
		l, ok := at.(*arrow.ListType)
		if !ok {
			return tt, nil, nil // conform reports the mismatch
		}
		et, ch, err := m.widenType(t.ElementType, l.Elem(), path+".element", join(fieldPath, "element"))
		if err != nil || len(ch) == 0 {
			return tt, nil, err
		}
		return &txlog.ArrayType{ElementType: et, ContainsNull: t.ContainsNull}, ch, nil
	case *txlog.MapType:
		mt, ok := at.(*arrow.MapType)
		if !ok {
			return tt, nil, nil
		}
		kt, kch, err := m.widenType(t.KeyType, mt.KeyType(), path+".key", join(fieldPath, "key"))
		if err != nil {
			return tt, nil, err
		}
		vt, vch, err := m.widenType(t.ValueType, mt.ItemType(), path+".value", join(fieldPath, "value"))
		if err != nil {
			return tt, nil, err
		}
		if len(kch)+len(vch) == 0 {
			return tt, nil, nil
		}
		return &txlog.MapType{KeyType: kt, ValueType: vt, ValueContainsNull: t.ValueContainsNull}, append(kch, vch...), nil
	}
	given, err := deltaarrow.FromArrow(at)
	if err != nil || given.TypeName() == tt.TypeName() || widens(given, tt) {
		return tt, nil, nil // equal, narrower (conform casts it), or not a Delta type (conform refuses it)
	}
	if !deltaarrow.CanWiden(tt, given) {
		return nil, nil, &SchemaError{Column: path, TableType: typeString(tt), GivenType: arrowTypeString(at),
			Problem: "cannot widen the column to the input's type: type widening allows byte → short → integer → long, " +
				"float → double, byte, short or integer → double, date → timestamp_ntz, and decimals and integers to decimals " +
				"with no fewer integer digits and no smaller scale"}
	}
	m.widened = true
	return given, []deltaarrow.TypeChange{{TableVersion: m.version, FromType: tt.TypeName(), ToType: given.TypeName(), FieldPath: fieldPath}}, nil
}

// widenField widens the existing field f to fit the input's Arrow type at, recording the type
// changes in its metadata; changed is false when the input fits f as it is.
func (m *schemaMerge) widenField(f txlog.StructField, at arrow.DataType, path string) (out txlog.StructField, changed bool, err error) {
	nt, changes, err := m.widenType(f.Type, at, path, "")
	if err != nil || len(changes) == 0 {
		return f, false, err
	}
	for _, c := range changes {
		md, err := deltaarrow.AppendTypeChange(f, c)
		if err != nil {
			return f, false, &SchemaError{Column: path, Problem: err.Error()}
		}
		f.Metadata = md
	}
	f.Type = nt
	return f, true, nil
}

// withTypeWidening returns p with the typeWidening reader and writer feature (and
// timestampNtz when ntz is set), upgrading a legacy protocol to reader version 3 and writer
// version 7 with the features its versions implied. A protocol with typeWidening-preview
// already has what the feature needs.
func withTypeWidening(p txlog.Protocol, ntz bool) txlog.Protocol {
	var features []string
	if !p.HasReaderFeature("typeWidening") && !p.HasReaderFeature("typeWidening-preview") {
		features = append(features, "typeWidening")
	}
	if ntz && !p.HasReaderFeature("timestampNtz") {
		features = append(features, "timestampNtz")
	}
	if len(features) == 0 {
		return p
	}
	out := txlog.Protocol{MinReaderVersion: 3, MinWriterVersion: 7,
		ReaderFeatures: slices.Clone(p.ReaderFeatures), WriterFeatures: slices.Clone(p.WriterFeatures)}
	if p.MinReaderVersion < 3 {
		out.ReaderFeatures = nil
		if p.HasReaderFeature("columnMapping") {
			out.ReaderFeatures = append(out.ReaderFeatures, "columnMapping")
		}
	}
	if p.MinWriterVersion < 7 {
		out.WriterFeatures = nil
		for _, f := range []string{"appendOnly", "invariants", "checkConstraints", "changeDataFeed",
			"generatedColumns", "columnMapping", "identityColumns"} {
			if p.HasWriterFeature(f) {
				out.WriterFeatures = append(out.WriterFeatures, f)
			}
		}
	}
	for _, f := range features {
		if !slices.Contains(out.ReaderFeatures, f) {
			out.ReaderFeatures = append(out.ReaderFeatures, f)
		}
		if !slices.Contains(out.WriterFeatures, f) {
			out.WriterFeatures = append(out.WriterFeatures, f)
		}
	}
	return out
}

// checkWideningAllowed refuses a widening on a table that turned type widening off.
func checkWideningAllowed(conf map[string]string) error {
	if v, ok := conf[enableTypeWidening]; ok && v != "true" {
		return &SchemaError{Column: "(widened columns)", Problem: fmt.Sprintf("the table sets %s=%s: widening a column's type needs it true", enableTypeWidening, v)}
	}
	return nil
}
