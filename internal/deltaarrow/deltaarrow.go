// Package deltaarrow maps Delta schema types to Arrow types and back. It is the one place the
// engine decides how a Delta column looks in Arrow: timestamps are microseconds (UTC for
// "timestamp", zone-less for "timestamp_ntz"), dates are date32, decimals decimal128, arrays
// lists, maps Arrow maps.
package deltaarrow

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lakehouse/lake/txlog"
)

// Schema converts a Delta schema to an Arrow schema with the fields' logical names.
func Schema(st *txlog.StructType) (*arrow.Schema, error) {
	fields := make([]arrow.Field, len(st.Fields))
	for i, f := range st.Fields {
		af, err := Field(f)
		if err != nil {
			return nil, err
		}
		fields[i] = af
	}
	return arrow.NewSchema(fields, nil), nil
}

// Field converts one Delta field.
func Field(f txlog.StructField) (arrow.Field, error) {
	t, err := Type(f.Type)
	if err != nil {
		return arrow.Field{}, fmt.Errorf("column %q: %w", f.Name, err)
	}
	return arrow.Field{Name: f.Name, Type: t, Nullable: f.Nullable}, nil
}

// Type converts a Delta type to its Arrow type.
func Type(t txlog.DataType) (arrow.DataType, error) {
	switch v := t.(type) {
	case *txlog.PrimitiveType:
		switch v.Name {
		case "string":
			return arrow.BinaryTypes.String, nil
		case "long":
			return arrow.PrimitiveTypes.Int64, nil
		case "integer":
			return arrow.PrimitiveTypes.Int32, nil
		case "short":
			return arrow.PrimitiveTypes.Int16, nil
		case "byte":
			return arrow.PrimitiveTypes.Int8, nil
		case "float":
			return arrow.PrimitiveTypes.Float32, nil
		case "double":
			return arrow.PrimitiveTypes.Float64, nil
		case "boolean":
			return arrow.FixedWidthTypes.Boolean, nil
		case "binary":
			return arrow.BinaryTypes.Binary, nil
		case "date":
			return arrow.FixedWidthTypes.Date32, nil
		case "timestamp":
			return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, nil
		case "timestamp_ntz":
			return &arrow.TimestampType{Unit: arrow.Microsecond}, nil
		}
		return nil, fmt.Errorf("type %s is not supported", v.Name)
	case *txlog.DecimalType:
		return &arrow.Decimal128Type{Precision: int32(v.Precision), Scale: int32(v.Scale)}, nil
	case *txlog.ArrayType:
		et, err := Type(v.ElementType)
		if err != nil {
			return nil, err
		}
		return arrow.ListOfField(arrow.Field{Name: "element", Type: et, Nullable: v.ContainsNull}), nil
	case *txlog.MapType:
		kt, err := Type(v.KeyType)
		if err != nil {
			return nil, err
		}
		vt, err := Type(v.ValueType)
		if err != nil {
			return nil, err
		}
		m := arrow.MapOf(kt, vt)
		m.SetItemNullable(v.ValueContainsNull)
		return m, nil
	case *txlog.StructType:
		fields := make([]arrow.Field, len(v.Fields))
		for i, f := range v.Fields {
			af, err := Field(f)
			if err != nil {
				return nil, err
			}
			fields[i] = af
		}
		return arrow.StructOf(fields...), nil
	}
	return nil, fmt.Errorf("type %T is not supported", t)
}

// FromArrow converts an Arrow type to the Delta type it stands for.
func FromArrow(t arrow.DataType) (txlog.DataType, error) {
	switch v := t.(type) {
	case *arrow.StringType, *arrow.LargeStringType, *arrow.StringViewType:
		return txlog.String, nil
	case *arrow.Int64Type:
		return txlog.Long, nil
	case *arrow.Int32Type:
		return txlog.Integer, nil
	case *arrow.Int16Type:
		return txlog.Short, nil
	case *arrow.Int8Type:
		return txlog.Byte, nil
	case *arrow.Float32Type:
		return txlog.Float, nil
	case *arrow.Float64Type:
		return txlog.Double, nil
	case *arrow.BooleanType:
		return txlog.Boolean, nil
	case *arrow.BinaryType, *arrow.LargeBinaryType, *arrow.BinaryViewType, *arrow.FixedSizeBinaryType:
		return txlog.Binary, nil
	case *arrow.Date32Type:
		return txlog.Date, nil
	case *arrow.TimestampType:
		if v.TimeZone == "" {
			return txlog.TimestampNTZ, nil
		}
		return txlog.Timestamp, nil
	case *arrow.Decimal128Type:
		return &txlog.DecimalType{Precision: int(v.Precision), Scale: int(v.Scale)}, nil
	case *arrow.ListType:
		et, err := FromArrow(v.Elem())
		if err != nil {
			return nil, err
		}
		return &txlog.ArrayType{ElementType: et, ContainsNull: v.ElemField().Nullable}, nil
	case *arrow.MapType:
		kt, err := FromArrow(v.KeyType())
		if err != nil {
			return nil, err
		}
		vt, err := FromArrow(v.ItemType())
		if err != nil {
			return nil, err
		}
		return &txlog.MapType{KeyType: kt, ValueType: vt, ValueContainsNull: v.ItemField().Nullable}, nil
	case *arrow.StructType:
		st := &txlog.StructType{}
		for _, f := range v.Fields() {
			ft, err := FromArrow(f.Type)
			if err != nil {
				return nil, fmt.Errorf("field %q: %w", f.Name, err)
			}
			st.Fields = append(st.Fields, txlog.StructField{Name: f.Name, Type: ft, Nullable: f.Nullable})
		}
		return st, nil
	}
	return nil, fmt.Errorf("arrow type %s has no Delta type", t)
}

// FromArrowSchema converts an Arrow schema to a Delta schema.
func FromArrowSchema(s *arrow.Schema) (*txlog.StructType, error) {
	st := &txlog.StructType{}
	for _, f := range s.Fields() {
		ft, err := FromArrow(f.Type)
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", f.Name, err)
		}
		st.Fields = append(st.Fields, txlog.StructField{Name: f.Name, Type: ft, Nullable: f.Nullable})
	}
	return st, nil
}
