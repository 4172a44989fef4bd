package delta

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// DataType is a Delta schema type: a *PrimitiveType, *DecimalType, *StructType, *ArrayType or
// *MapType.
type DataType interface {
	// TypeName is the type as the schema serialisation spells it ("long", "decimal(10,2)",
	// "struct", "array", "map").
	TypeName() string
	isDataType()
}

// PrimitiveType is one of the protocol's primitive types by name: string, long, integer, short,
// byte, float, double, boolean, binary, date, timestamp, timestamp_ntz, variant.
type PrimitiveType struct{ Name string }

// DecimalType is decimal(Precision, Scale).
type DecimalType struct{ Precision, Scale int }

// ArrayType is an array of ElementType.
type ArrayType struct {
	ElementType  DataType
	ContainsNull bool
}

// MapType is a map from KeyType to ValueType.
type MapType struct {
	KeyType           DataType
	ValueType         DataType
	ValueContainsNull bool
}

// StructField is one named field of a struct. Metadata holds the field's metadata as JSON values
// (column mapping keeps delta.columnMapping.id and delta.columnMapping.physicalName there).
type StructField struct {
	Name     string
	Type     DataType
	Nullable bool
	Metadata map[string]any
}

// StructType is a struct; a table's schema is a StructType.
type StructType struct{ Fields []StructField }

// The primitive types.
var (
	String       = &PrimitiveType{"string"}
	Long         = &PrimitiveType{"long"}
	Integer      = &PrimitiveType{"integer"}
	Short        = &PrimitiveType{"short"}
	Byte         = &PrimitiveType{"byte"}
	Float        = &PrimitiveType{"float"}
	Double       = &PrimitiveType{"double"}
	Boolean      = &PrimitiveType{"boolean"}
	Binary       = &PrimitiveType{"binary"}
	Date         = &PrimitiveType{"date"}
	Timestamp    = &PrimitiveType{"timestamp"}
	TimestampNTZ = &PrimitiveType{"timestamp_ntz"}
	Variant      = &PrimitiveType{"variant"}
)

var primitives = map[string]*PrimitiveType{}

func init() {
	for _, p := range []*PrimitiveType{String, Long, Integer, Short, Byte, Float, Double, Boolean,
		Binary, Date, Timestamp, TimestampNTZ, Variant} {
		primitives[p.Name] = p
	}
}

func (t *PrimitiveType) TypeName() string { return t.Name }
func (t *DecimalType) TypeName() string   { return fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale) }
func (t *ArrayType) TypeName() string     { return "array" }
func (t *MapType) TypeName() string       { return "map" }
func (t *StructType) TypeName() string    { return "struct" }
func (*PrimitiveType) isDataType()        {}
func (*DecimalType) isDataType()          {}
func (*ArrayType) isDataType()            {}
func (*MapType) isDataType()              {}
func (*StructType) isDataType()           {}

// Field returns the field named name (case-sensitive) and whether it exists.
func (t *StructType) Field(name string) (StructField, bool) {
	for _, f := range t.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return StructField{}, false
}

// FieldIndex returns the position of the field named name, or -1.
func (t *StructType) FieldIndex(name string) int {
	for i, f := range t.Fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// PhysicalName is the field's name in data files: its column-mapping physical name when the
// field has one, else its name.
func (f StructField) PhysicalName() string {
	if s, ok := f.Metadata["delta.columnMapping.physicalName"].(string); ok && s != "" {
		return s
	}
	return f.Name
}

// ColumnMappingID is the field's column-mapping id, or 0 when it has none.
func (f StructField) ColumnMappingID() int64 {
	switch v := f.Metadata["delta.columnMapping.id"].(type) {
	case float64:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	}
	return 0
}

var decimalRE = regexp.MustCompile(`^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$`)

// ParseSchema decodes a metaData schemaString.
func ParseSchema(s string) (*StructType, error) {
	var raw any
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("schema is not valid JSON: %w", err)
	}
	t, err := decodeType(raw)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	st, ok := t.(*StructType)
	if !ok {
		return nil, fmt.Errorf("schema: top-level type is %s, want struct", t.TypeName())
	}
	return st, nil
}

func decodeType(raw any) (DataType, error) {
	switch v := raw.(type) {
	case string:
		if p, ok := primitives[v]; ok {
			return p, nil
		}
		if v == "decimal" {
			return &DecimalType{Precision: 10, Scale: 0}, nil
		}
		if m := decimalRE.FindStringSubmatch(v); m != nil {
			p, _ := strconv.Atoi(m[1])
			sc, _ := strconv.Atoi(m[2])
			if p < 1 || p > 38 || sc > p {
				return nil, fmt.Errorf("invalid %s: precision must be 1..38 and scale at most precision", v)
			}
			return &DecimalType{Precision: p, Scale: sc}, nil
		}
		return nil, fmt.Errorf("unknown type %q", v)
	case map[string]any:
		switch v["type"] {
		case "struct":
			fs, _ := v["fields"].([]any)
			st := &StructType{Fields: make([]StructField, 0, len(fs))}
			for i, fr := range fs {
				fm, ok := fr.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("field %d is not an object", i)
				}
				name, ok := fm["name"].(string)
				if !ok {
					return nil, fmt.Errorf("field %d has no name", i)
				}
				ft, err := decodeType(fm["type"])
				if err != nil {
					return nil, fmt.Errorf("field %q: %w", name, err)
				}
				nullable, _ := fm["nullable"].(bool)
				md, _ := fm["metadata"].(map[string]any)
				st.Fields = append(st.Fields, StructField{Name: name, Type: ft, Nullable: nullable, Metadata: md})
			}
			return st, nil
		case "array":
			et, err := decodeType(v["elementType"])
			if err != nil {
				return nil, fmt.Errorf("array element: %w", err)
			}
			cn, _ := v["containsNull"].(bool)
			return &ArrayType{ElementType: et, ContainsNull: cn}, nil
		case "map":
			kt, err := decodeType(v["keyType"])
			if err != nil {
				return nil, fmt.Errorf("map key: %w", err)
			}
			vt, err := decodeType(v["valueType"])
			if err != nil {
				return nil, fmt.Errorf("map value: %w", err)
			}
			vcn, _ := v["valueContainsNull"].(bool)
			return &MapType{KeyType: kt, ValueType: vt, ValueContainsNull: vcn}, nil
		}
		return nil, fmt.Errorf("unknown complex type %v", v["type"])
	}
	return nil, fmt.Errorf("unexpected type %v", raw)
}

func encodeType(t DataType) any {
	switch v := t.(type) {
	case *StructType:
		fields := make([]any, len(v.Fields))
		for i, f := range v.Fields {
			md := f.Metadata
			if md == nil {
				md = map[string]any{}
			}
			fields[i] = map[string]any{"name": f.Name, "type": encodeType(f.Type), "nullable": f.Nullable, "metadata": md}
		}
		return map[string]any{"type": "struct", "fields": fields}
	case *ArrayType:
		return map[string]any{"type": "array", "elementType": encodeType(v.ElementType), "containsNull": v.ContainsNull}
	case *MapType:
		return map[string]any{"type": "map", "keyType": encodeType(v.KeyType), "valueType": encodeType(v.ValueType), "valueContainsNull": v.ValueContainsNull}
	default:
		return t.TypeName()
	}
}

// String serialises the schema as a metaData schemaString.
func (t *StructType) String() string {
	b, err := json.Marshal(encodeType(t))
	if err != nil {
		panic(err) // only JSON-safe values are stored
	}
	return string(b)
}

// TypeString renders a type the way messages and `lake describe` show it: "long",
// "array<string>", "map<string,long>", "struct<a:long,b:string>".
func TypeString(t DataType) string {
	switch v := t.(type) {
	case *ArrayType:
		return "array<" + TypeString(v.ElementType) + ">"
	case *MapType:
		return "map<" + TypeString(v.KeyType) + "," + TypeString(v.ValueType) + ">"
	case *StructType:
		parts := make([]string, len(v.Fields))
		for i, f := range v.Fields {
			parts[i] = f.Name + ":" + TypeString(f.Type)
		}
		return "struct<" + strings.Join(parts, ",") + ">"
	case nil:
		return ""
	}
	return t.TypeName()
}
