package reader

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/lakehouse/lake/txlog"
)

// Filter is one predicate COLUMN OP VALUE; a scan ANDs its filters. Column is a column's
// logical name, or a dotted path to a field of a struct column ("address.city"; a column whose
// own name holds the dots wins). Filters on binary, array, map and struct values are not
// supported.
//
// Op is one of = != < <= > >= in. Values holds one value, or the list of an "in". Values are
// written as text and converted to the column's type when the scan is planned: integers,
// decimals and floats as numbers, booleans as true/false, dates as 2024-01-02, timestamps as
// RFC 3339 (2024-01-02T03:04:05.123456Z) or 2024-01-02 03:04:05[.ffffff] (UTC when no zone is
// given). Comparisons follow SQL: a null never matches, not even !=; NaN matches only !=.
// A value between two representable values of the column (2.5 for an integer column) compares
// as the number it is: x > 2.5 selects 3 and up, x = 2.5 selects nothing.
type Filter struct {
	Column string
	Op     string
	Values []string
}

// String renders the filter in the syntax ParseFilter reads.
func (f Filter) String() string {
	if f.Op == "in" {
		return fmt.Sprintf("%s in (%s)", f.Column, strings.Join(f.Values, ","))
	}
	v := ""
	if len(f.Values) > 0 {
		v = f.Values[0]
	}
	return fmt.Sprintf("%s %s %s", f.Column, f.Op, v)
}

var inRE = regexp.MustCompile(`(?is)^(.*?)\s+in\s*\((.*)\)\s*$`)

// ParseFilter parses the CLI syntax of a filter: `COL OP VALUE` with OP one of = != < <= > >=
// (spaces around OP optional), or `COL in (V1,V2,...)`. A column name holding spaces or
// operator characters can be quoted with backticks or double quotes; a value can be quoted with
// single or double quotes (to keep commas, spaces or quotes inside it).
func ParseFilter(expr string) (Filter, error) {
	fail := func(reason string) (Filter, error) {
		return Filter{}, &FilterError{Expr: expr, Reason: reason + "; write COLUMN OP VALUE with OP one of = != < <= > >=, or COLUMN in (V1,V2,...)"}
	}
	s := strings.TrimSpace(expr)
	if s == "" {
		return fail("empty filter")
	}
	// A quoted column name.
	var col, rest string
	if q := s[0]; q == '`' || q == '"' {
		end := strings.IndexByte(s[1:], q)
		if end < 0 {
			return fail("unterminated quoted column name")
		}
		col, rest = s[1:1+end], strings.TrimSpace(s[2+end:])
		if m := regexp.MustCompile(`(?is)^in\s*\((.*)\)\s*$`).FindStringSubmatch(rest); m != nil {
			return inFilter(expr, col, m[1])
		}
		op, val := splitOp(rest)
		if op == "" || op != strings.TrimSpace(rest[:len(op)]) {
			return fail("no operator after the column")
		}
		return opFilter(expr, col, op, val)
	}
	opAt := strings.IndexAny(s, "=!<>")
	if m := inRE.FindStringSubmatchIndex(s); m != nil && (opAt < 0 || m[3] <= opAt) {
		return inFilter(expr, strings.TrimSpace(s[m[2]:m[3]]), s[m[4]:m[5]])
	}
	if opAt <= 0 {
		return fail("no operator")
	}
	col, rest = strings.TrimSpace(s[:opAt]), s[opAt:]
	op, val := splitOp(rest)
	if op == "" {
		return fail("unknown operator")
	}
	return opFilter(expr, col, op, val)
}

// splitOp splits "<= 3" into "<=" and "3".
func splitOp(s string) (op, rest string) {
	for _, o := range []string{"<=", ">=", "!=", "<>", "==", "=", "<", ">"} {
		if strings.HasPrefix(s, o) {
			op = o
			break
		}
	}
	if op == "" {
		return "", ""
	}
	rest = s[len(op):]
	switch op {
	case "<>":
		op = "!="
	case "==":
		op = "="
	}
	return op, rest
}

func opFilter(expr, col, op, val string) (Filter, error) {
	if col == "" {
		return Filter{}, &FilterError{Expr: expr, Reason: "no column before the operator"}
	}
	v, ok := unquote(strings.TrimSpace(val))
	if !ok {
		return Filter{}, &FilterError{Expr: expr, Column: col, Reason: "unterminated quoted value"}
	}
	if strings.TrimSpace(val) == "" {
		return Filter{}, &FilterError{Expr: expr, Column: col, Reason: "no value after the operator (quote an empty string as '')"}
	}
	return Filter{Column: col, Op: op, Values: []string{v}}, nil
}

func inFilter(expr, col, list string) (Filter, error) {
	if col == "" {
		return Filter{}, &FilterError{Expr: expr, Reason: "no column before in"}
	}
	vals, err := splitList(list)
	if err != nil {
		return Filter{}, &FilterError{Expr: expr, Column: col, Reason: err.Error()}
	}
	if len(vals) == 0 {
		return Filter{}, &FilterError{Expr: expr, Column: col, Reason: "empty in list"}
	}
	return Filter{Column: col, Op: "in", Values: vals}, nil
}

// splitList splits `a, 'b,c', "d"` on commas outside quotes.
func splitList(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	var quote byte
	quoted := false
	flush := func() error {
		v := strings.TrimSpace(cur.String())
		if !quoted && v == "" {
			return fmt.Errorf("empty value in the in list")
		}
		out = append(out, v)
		cur.Reset()
		quoted = false
		return nil
	}
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				if i+1 < len(s) && s[i+1] == quote { // doubled quote: a literal quote
					cur.WriteByte(c)
					i++
					continue
				}
				quote = 0
				continue
			}
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			if strings.TrimSpace(cur.String()) == "" {
				cur.Reset()
				quote, quoted = c, true
				continue
			}
			cur.WriteByte(c)
		case c == ',':
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			if quoted && c != ' ' && c != '\t' {
				return nil, fmt.Errorf("text after a quoted value")
			}
			if !quoted {
				cur.WriteByte(c)
			}
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quoted value")
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// unquote strips one level of '...' or "..." quoting (a doubled quote inside is a literal one).
func unquote(s string) (string, bool) {
	if len(s) == 0 || (s[0] != '\'' && s[0] != '"') {
		return s, true
	}
	q := s[0]
	if len(s) < 2 || s[len(s)-1] != q {
		return "", false
	}
	inner := s[1 : len(s)-1]
	return strings.ReplaceAll(inner, string([]byte{q, q}), string(q)), true
}

// op is a normalised operator.
type op uint8

const (
	opEq op = iota
	opNe
	opLt
	opLe
	opGt
	opGe
	opIn
	opNotNull // true for every non-null value
	opNever   // true for no value
)

// boundFilter is a filter bound to a column of the table.
type boundFilter struct {
	src Filter
	// path leads from a top-level column (path[0]) through struct fields to the compared field
	// (the last one); a filter on a top-level column has a path of one.
	path []txlog.StructField
	ct   colType
	op   op
	vals []value // one value, or the values of opIn
}

// field is the compared field.
func (f *boundFilter) field() txlog.StructField { return f.path[len(f.path)-1] }

// resolvePath finds name in st: a field of that name, or a dotted path "a.b.c" through struct
// fields (field names may themselves hold dots; the longest top-level match wins).
func resolvePath(st *txlog.StructType, name string) []txlog.StructField {
	if f, ok := st.Field(name); ok {
		return []txlog.StructField{f}
	}
	for i := len(name) - 1; i > 0; i-- {
		if name[i] != '.' {
			continue
		}
		f, ok := st.Field(name[:i])
		if !ok {
			continue
		}
		if sub, ok := f.Type.(*txlog.StructType); ok {
			if rest := resolvePath(sub, name[i+1:]); rest != nil {
				return append([]txlog.StructField{f}, rest...)
			}
		}
	}
	return nil
}

// bindFilter resolves the filter's column in the schema and parses its values.
func bindFilter(f Filter, schema *txlog.StructType) (*boundFilter, error) {
	expr := f.String()
	path := resolvePath(schema, f.Column)
	ok := path != nil
	var field txlog.StructField
	if ok {
		field = path[len(path)-1]
	}
	if !ok {
		names := make([]string, len(schema.Fields))
		for i, c := range schema.Fields {
			names[i] = c.Name
		}
		return nil, &FilterError{Expr: expr, Column: f.Column, Reason: fmt.Sprintf("no such column (columns: %s)", strings.Join(names, ", "))}
	}
	ct := typeOf(field.Type)
	ferr := func(v, reason string) error {
		return &FilterError{Expr: expr, Column: f.Column, Value: v, Type: ct.name, Reason: reason}
	}
	switch ct.kind {
	case kInvalid:
		return nil, ferr("", "filters on nested or variant columns are not supported")
	case kBinary:
		return nil, ferr("", "filters on binary columns are not supported")
	}
	bf := &boundFilter{src: f, path: path, ct: ct}
	if f.Op == "in" {
		if len(f.Values) == 0 {
			return nil, ferr("", "empty in list")
		}
		bf.op = opIn
		for _, s := range f.Values {
			lo, _, exact, err := ct.literal(s)
			if err != nil {
				return nil, ferr(s, err.Error())
			}
			if exact && !ct.isNaN(lo) {
				bf.vals = append(bf.vals, lo)
			}
		}
		if len(bf.vals) == 0 {
			bf.op = opNever
		}
		return bf, nil
	}
	if len(f.Values) != 1 {
		return nil, ferr("", fmt.Sprintf("operator %s takes one value, got %d", f.Op, len(f.Values)))
	}
	s := f.Values[0]
	lo, hi, exact, err := ct.literal(s)
	if err != nil {
		return nil, ferr(s, err.Error())
	}
	switch f.Op {
	case "=":
		bf.op, bf.vals = opEq, []value{lo}
		if !exact || ct.isNaN(lo) {
			bf.op = opNever
		}
	case "!=":
		bf.op, bf.vals = opNe, []value{lo}
		if !exact || ct.isNaN(lo) {
			bf.op = opNotNull
		}
	case "<":
		bf.op, bf.vals = opLt, []value{lo}
		if !exact {
			bf.op = opLe
		}
	case "<=":
		bf.op, bf.vals = opLe, []value{lo}
	case ">":
		bf.op, bf.vals = opGt, []value{hi}
		if !exact {
			bf.op = opGe
		}
	case ">=":
		bf.op, bf.vals = opGe, []value{hi}
	default:
		return nil, &FilterError{Expr: expr, Column: f.Column, Reason: fmt.Sprintf("unknown operator %q (want = != < <= > >= in)", f.Op)}
	}
	if (bf.op == opLt || bf.op == opLe || bf.op == opGt || bf.op == opGe) && ct.isNaN(bf.vals[0]) {
		bf.op = opNever
	}
	return bf, nil
}

// match evaluates the filter on one value.
func (f *boundFilter) match(v value) bool {
	if v.null {
		return false
	}
	switch f.op {
	case opNotNull:
		return true
	case opNever:
		return false
	case opIn:
		if f.ct.isNaN(v) {
			return false
		}
		for _, x := range f.vals {
			if f.ct.cmp(v, x) == 0 {
				return true
			}
		}
		return false
	}
	if f.ct.isNaN(v) {
		return f.op == opNe
	}
	c := f.ct.cmp(v, f.vals[0])
	switch f.op {
	case opEq:
		return c == 0
	case opNe:
		return c != 0
	case opLt:
		return c < 0
	case opLe:
		return c <= 0
	case opGt:
		return c > 0
	case opGe:
		return c >= 0
	}
	return false
}

// bounds is what statistics say about a column in a file or row group.
type bounds struct {
	min, max       value
	hasMin, hasMax bool
	// maxPrefix: max is a possibly truncated prefix of the largest value (strings), so any
	// string that starts with it may be in the file.
	maxPrefix bool
	// allNull: every row is null (nullCount == numRecords).
	allNull bool
	// noNull: no row is null (nullCount == 0).
	noNull bool
}

// aboveMax reports whether v is above every value the bounds admit.
func (f *boundFilter) aboveMax(b *bounds, v value, orEqual bool) bool {
	if !b.hasMax {
		return false
	}
	if b.maxPrefix {
		// Every admitted string is <= max or starts with max; v is above all of them iff
		// v > max and v does not start with max.
		return v.s > b.max.s && !strings.HasPrefix(v.s, b.max.s)
	}
	c := f.ct.cmp(v, b.max)
	return c > 0 || (orEqual && c == 0)
}

// belowMin reports whether v is below every value the bounds admit.
func (f *boundFilter) belowMin(b *bounds, v value, orEqual bool) bool {
	if !b.hasMin {
		return false
	}
	c := f.ct.cmp(v, b.min)
	return c < 0 || (orEqual && c == 0)
}

// mayMatch reports whether a file or row group with these bounds may hold a matching row.
// It answers true whenever it cannot prove otherwise.
func (f *boundFilter) mayMatch(b *bounds) bool {
	if b.allNull {
		return false // comparisons never match null
	}
	switch f.op {
	case opNever:
		return false
	case opNotNull:
		return true
	case opEq:
		v := f.vals[0]
		return !f.belowMin(b, v, false) && !f.aboveMax(b, v, false)
	case opIn:
		for _, v := range f.vals {
			if !f.belowMin(b, v, false) && !f.aboveMax(b, v, false) {
				return true
			}
		}
		return false
	case opNe:
		// Only when every value equals v: min == max == v, exact bounds, no NaN possible.
		if f.ct.kind == kFloat || f.ct.kind == kString || b.maxPrefix || !b.hasMin || !b.hasMax {
			return true
		}
		v := f.vals[0]
		return !(f.ct.cmp(b.min, v) == 0 && f.ct.cmp(b.max, v) == 0)
	case opLt: // some x < v  <=>  not (v <= min)
		return !f.belowMin(b, f.vals[0], true)
	case opLe:
		return !f.belowMin(b, f.vals[0], false)
	case opGt: // some x > v  <=>  not (v >= every x)
		return !f.aboveMax(b, f.vals[0], true)
	case opGe:
		return !f.aboveMax(b, f.vals[0], false)
	}
	return true
}
