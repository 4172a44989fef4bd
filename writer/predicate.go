package writer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/lakehouse/lake/internal/partval"
	"github.com/lakehouse/lake/txlog"
)

// PartitionPredicate is a condition on one partition column: Column Op Values. Values are
// written as partition values are serialised (2024-01-01 for a date, 42 for a long, true); "in"
// takes one or more values, the other operators exactly one. A null partition value matches no
// condition, as in SQL.
type PartitionPredicate struct {
	Column string
	Op     string // "=", "!=", "<", "<=", ">", ">=" or "in"
	Values []string
}

// ParsePartitionPredicate reads "COL OP VALUE", the form of the CLI's --where: for example
// "event_date=2024-01-01", "event_date >= 2024-01-01", "country in (DE, FR)". Values may be
// quoted with ' or ".
func ParsePartitionPredicate(expr string) (PartitionPredicate, error) {
	s := strings.TrimSpace(expr)
	// "in" first: it is a word, the others are symbols.
	lower := strings.ToLower(s)
	if i := strings.Index(lower, " in "); i > 0 {
		col := strings.TrimSpace(s[:i])
		list := strings.TrimSpace(s[i+4:])
		list = strings.TrimSuffix(strings.TrimPrefix(list, "("), ")")
		var vals []string
		for _, v := range strings.Split(list, ",") {
			vals = append(vals, unquote(strings.TrimSpace(v)))
		}
		if col == "" || len(vals) == 0 || (len(vals) == 1 && vals[0] == "") {
			return PartitionPredicate{}, fmt.Errorf("condition %q: want COL in (V1, V2, ...)", expr)
		}
		return PartitionPredicate{Column: unquoteIdent(col), Op: "in", Values: vals}, nil
	}
	for _, op := range []string{"<=", ">=", "!=", "<>", "=", "<", ">"} {
		if i := strings.Index(s, op); i > 0 {
			col := strings.TrimSpace(s[:i])
			val := unquote(strings.TrimSpace(s[i+len(op):]))
			if op == "<>" {
				op = "!="
			}
			if col == "" {
				break
			}
			return PartitionPredicate{Column: unquoteIdent(col), Op: op, Values: []string{val}}, nil
		}
	}
	return PartitionPredicate{}, fmt.Errorf("condition %q: want COL OP VALUE with OP one of = != < <= > >= in", expr)
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

func unquoteIdent(v string) string {
	if len(v) >= 2 && v[0] == '`' && v[len(v)-1] == '`' {
		return v[1 : len(v)-1]
	}
	return v
}

// String renders the condition as SQL, the way commitInfo records a predicate.
func (p PartitionPredicate) String() string {
	q := func(v string) string { return "'" + strings.ReplaceAll(v, "'", "\\'") + "'" }
	if p.Op == "in" {
		vs := make([]string, len(p.Values))
		for i, v := range p.Values {
			vs[i] = q(v)
		}
		return fmt.Sprintf("(%s IN (%s))", p.Column, strings.Join(vs, ", "))
	}
	v := ""
	if len(p.Values) > 0 {
		v = p.Values[0]
	}
	return fmt.Sprintf("(%s %s %s)", p.Column, p.Op, q(v))
}

// boundPredicate is a PartitionPredicate checked against a schema, with parsed values.
type boundPredicate struct {
	src    PartitionPredicate
	key    string // the partitionValues key: the column's physical name
	typ    txlog.DataType
	values []any
}

// bindPredicates checks the conditions against the table: each names a partition column
// (logical name, case-insensitively), has a known operator, and values of the column's type.
func bindPredicates(preds []PartitionPredicate, schema *txlog.StructType, partCols []string, mapping string) ([]boundPredicate, error) {
	out := make([]boundPredicate, 0, len(preds))
	for _, p := range preds {
		var field txlog.StructField
		found := false
		for _, c := range partCols {
			if strings.EqualFold(c, p.Column) {
				field, found = schema.Field(c)
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("condition %s: %q is not a partition column (partition columns: %s); OverwriteWhere replaces whole partitions", p, p.Column, strings.Join(partCols, ", "))
		}
		switch p.Op {
		case "=", "!=", "<", "<=", ">", ">=":
			if len(p.Values) != 1 {
				return nil, fmt.Errorf("condition %s: operator %s takes one value, got %d", p, p.Op, len(p.Values))
			}
		case "in":
			if len(p.Values) == 0 {
				return nil, fmt.Errorf("condition %s: in takes at least one value", p)
			}
		default:
			return nil, fmt.Errorf("condition %s: unknown operator %q (want = != < <= > >= in)", p, p.Op)
		}
		b := boundPredicate{src: p, key: physicalName(field, mapping), typ: field.Type}
		for _, v := range p.Values {
			pv, err := partval.Parse(&v, field.Type)
			if err != nil {
				return nil, fmt.Errorf("condition %s: %w", p, err)
			}
			if pv == nil {
				return nil, fmt.Errorf("condition %s: an empty value is a null, which no condition matches", p)
			}
			b.values = append(b.values, pv)
		}
		out = append(out, b)
	}
	return out, nil
}

// matchAll reports whether the partition values (keyed by physical name) satisfy every
// condition. A value that does not parse matches nothing.
func matchAll(preds []boundPredicate, pv map[string]*string) bool {
	for _, p := range preds {
		if !p.match(pv[p.key]) {
			return false
		}
	}
	return true
}

func (p boundPredicate) match(raw *string) bool {
	v, err := partval.Parse(raw, p.typ)
	if err != nil || v == nil {
		return false
	}
	if p.src.Op == "in" {
		for _, w := range p.values {
			if c, ok := p.compare(v, w); ok && c == 0 {
				return true
			}
		}
		return false
	}
	c, ok := p.compare(v, p.values[0])
	if !ok {
		return false
	}
	switch p.src.Op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}

func (p boundPredicate) compare(a, b any) (int, bool) {
	if _, ok := p.typ.(*txlog.DecimalType); ok {
		x, ok1 := a.(string)
		y, ok2 := b.(string)
		return compareDecimal(x, y), ok1 && ok2
	}
	return compareValues(a, b)
}

// predicateJSON is commitInfo's "predicate" parameter: a JSON list of SQL conditions.
func predicateJSON(preds []PartitionPredicate) string {
	ss := make([]string, len(preds))
	for i, p := range preds {
		ss[i] = p.String()
	}
	b, _ := json.Marshal(ss)
	return string(b)
}

// compareValues orders two values of the same partval representation. ok is false when they are
// not comparable (NaN, or different representations).
func compareValues(a, b any) (int, bool) {
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	case int64:
		y, ok := b.(int64)
		return cmpOrdered(x, y), ok
	case int32:
		y, ok := b.(int32)
		return cmpOrdered(x, y), ok
	case int16:
		y, ok := b.(int16)
		return cmpOrdered(x, y), ok
	case int8:
		y, ok := b.(int8)
		return cmpOrdered(x, y), ok
	case float64:
		y, ok := b.(float64)
		if !ok || x != x || y != y {
			return 0, false
		}
		return cmpOrdered(x, y), true
	case float32:
		y, ok := b.(float32)
		if !ok || x != x || y != y {
			return 0, false
		}
		return cmpOrdered(x, y), true
	case bool:
		y, ok := b.(bool)
		if !ok {
			return 0, false
		}
		switch {
		case x == y:
			return 0, true
		case !x:
			return -1, true
		}
		return 1, true
	case []byte:
		y, ok := b.([]byte)
		return bytes.Compare(x, y), ok
	case time.Time:
		y, ok := b.(time.Time)
		return x.Compare(y), ok
	}
	return 0, false
}

func cmpOrdered[T int8 | int16 | int32 | int64 | float32 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareDecimal orders canonical decimal strings of one scale; strings of a decimal column are
// compared here instead of bytewise.
func compareDecimal(a, b string) int {
	x, _ := new(big.Rat).SetString(a)
	y, _ := new(big.Rat).SetString(b)
	if x == nil || y == nil {
		return strings.Compare(a, b)
	}
	return x.Cmp(y)
}
