package deltaarrow

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/lakehouse/lake/txlog"
)

// TypeChangesKey is the field metadata key under which the Type Widening table feature records
// the type changes of a column (protocol "Type Change Metadata").
const TypeChangesKey = "delta.typeChanges"

// TypeChange is one entry of a field's delta.typeChanges: the column (or, with FieldPath, its
// array element or map key/value) changed from FromType to ToType at TableVersion.
type TypeChange struct {
	// TableVersion is the version that applied the change; typeWidening-preview writers record
	// it, the stable feature may leave it out (0).
	TableVersion int64  `json:"tableVersion,omitempty"`
	FromType     string `json:"fromType"`
	ToType       string `json:"toType"`
	// FieldPath is "element", "key", "value" or a dotted path of them for a change inside an
	// array or map; empty for the field itself.
	FieldPath string `json:"fieldPath,omitempty"`
}

// TypeChanges returns the delta.typeChanges recorded in a field's metadata (nil when none).
func TypeChanges(f txlog.StructField) ([]TypeChange, error) {
	raw, ok := f.Metadata[TypeChangesKey]
	if !ok || raw == nil {
		return nil, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("field %q: %s: %w", f.Name, TypeChangesKey, err)
	}
	var out []TypeChange
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("field %q: %s is not a list of type changes: %w", f.Name, TypeChangesKey, err)
	}
	return out, nil
}

// AppendTypeChange returns a copy of f's metadata with one more delta.typeChanges entry,
// keeping the entries already recorded (writers must preserve them).
func AppendTypeChange(f txlog.StructField, c TypeChange) (map[string]any, error) {
	old, err := TypeChanges(f)
	if err != nil {
		return nil, err
	}
	list := make([]any, 0, len(old)+1)
	for _, o := range append(old, c) {
		m := map[string]any{"fromType": o.FromType, "toType": o.ToType}
		if o.TableVersion != 0 {
			m["tableVersion"] = float64(o.TableVersion)
		}
		if o.FieldPath != "" {
			m["fieldPath"] = o.FieldPath
		}
		list = append(list, m)
	}
	md := make(map[string]any, len(f.Metadata)+1)
	for k, v := range f.Metadata {
		md[k] = v
	}
	md[TypeChangesKey] = list
	return md, nil
}

var decimalName = regexp.MustCompile(`^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$`)

// ParseTypeName parses the name of a primitive or decimal Delta type as type changes record it
// ("integer", "long", "decimal(10,2)"; "int" and "bigint" are accepted as Spark's SQL names).
func ParseTypeName(s string) (txlog.DataType, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "int":
		s = "integer"
	case "bigint":
		s = "long"
	case "smallint":
		s = "short"
	case "tinyint":
		s = "byte"
	case "timestampntz":
		s = "timestamp_ntz"
	}
	for _, p := range []*txlog.PrimitiveType{txlog.String, txlog.Long, txlog.Integer, txlog.Short,
		txlog.Byte, txlog.Float, txlog.Double, txlog.Boolean, txlog.Binary, txlog.Date,
		txlog.Timestamp, txlog.TimestampNTZ} {
		if p.Name == s {
			return p, nil
		}
	}
	if m := decimalName.FindStringSubmatch(s); m != nil {
		p, _ := strconv.Atoi(m[1])
		sc, _ := strconv.Atoi(m[2])
		if p < 1 || p > 38 || sc > p {
			return nil, fmt.Errorf("invalid type %s", s)
		}
		return &txlog.DecimalType{Precision: p, Scale: sc}, nil
	}
	return nil, fmt.Errorf("unknown type %q", s)
}

// intDigits are the decimal digits an integer type needs: Byte, Short and Int widen to
// decimals with at least 10 integer digits, Long to at least 20 (protocol "Type Widening").
var intDigits = map[string]int{"byte": 10, "short": 10, "integer": 10, "long": 20}

var intRank = map[string]int{"byte": 1, "short": 2, "integer": 3, "long": 4}

// CanWiden reports whether the Type Widening table feature allows changing a column (or field,
// array element, map key or value) of type from to type to:
//
//   - byte → short → integer → long;
//   - float → double, and byte, short or integer → double;
//   - date → timestamp_ntz;
//   - decimal(p, s) → decimal(p+k1, s+k2) with k1 ≥ k2 ≥ 0;
//   - byte, short or integer → decimal(10+k1, k2), long → decimal(20+k1, k2), k1 ≥ k2 ≥ 0.
//
// Equal types are not a change: CanWiden(t, t) is false.
func CanWiden(from, to txlog.DataType) bool {
	if from == nil || to == nil || from.TypeName() == to.TypeName() {
		return false
	}
	fn := from.TypeName()
	switch t := to.(type) {
	case *txlog.PrimitiveType:
		switch t.Name {
		case "short", "integer", "long":
			return intRank[fn] > 0 && intRank[fn] < intRank[t.Name]
		case "double":
			return fn == "float" || (intRank[fn] > 0 && intRank[fn] < 4)
		case "timestamp_ntz":
			return fn == "date"
		}
	case *txlog.DecimalType:
		switch f := from.(type) {
		case *txlog.DecimalType:
			return t.Scale >= f.Scale && t.Precision-t.Scale >= f.Precision-f.Scale
		case *txlog.PrimitiveType:
			d, ok := intDigits[f.Name]
			return ok && t.Precision-t.Scale >= d
		}
	}
	return false
}
