package source

import (
	"encoding/json"
	"strings"
)

// kind is the type a source gave a value: CSV fields are all strings; JSON says more.
type kind uint8

const (
	kStr kind = iota
	kNum
	kBool
	kNull
	kObj
	kArr
)

// value is one field of a source record, as text: strings as they are, numbers as their literal,
// booleans as true/false, objects and arrays as JSON.
type value struct {
	s    string
	kind kind
	obj  map[string]any // kObj: the decoded object (properties are taken from it)
}

// record is one source record: a CSV row with its header, or a decoded JSON object.
type record interface {
	// get returns the field at path (one element for a column or top-level key; several for a
	// dotted path into nested JSON).
	get(path []string) (value, bool)
	// each calls fn for every top-level field, in the source's order for CSV.
	each(fn func(name string, v value))
}

// csvRecord is a CSV row; fields are valid until the next row is read.
type csvRecord struct {
	names  []string
	index  map[string]int
	used   []bool // per column: the mapping reads it (so it is not a property)
	fields []string
}

// setNames names the columns and marks those the Standardizer reads.
func (r *csvRecord) setNames(names []string, s *Standardizer) {
	r.names = names
	r.index = make(map[string]int, len(names))
	r.used = make([]bool, len(names))
	for i, n := range names {
		r.index[n] = i
		r.used[i] = s.usedTop[n] || s.used[n]
	}
	s.bindCSV(r.index)
}

func (r *csvRecord) get(path []string) (value, bool) {
	if len(path) != 1 {
		return value{}, false
	}
	i, ok := r.index[path[0]]
	if !ok || i >= len(r.fields) {
		return value{}, false
	}
	return value{s: r.fields[i]}, true
}

func (r *csvRecord) each(fn func(string, value)) {
	for i, f := range r.fields {
		if i < len(r.names) {
			fn(r.names[i], value{s: f})
		}
	}
}

// jsonRecord is a JSON object decoded with UseNumber.
type jsonRecord map[string]any

func (r jsonRecord) get(path []string) (value, bool) {
	var cur any = map[string]any(r)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return value{}, false
		}
		if cur, ok = m[p]; !ok {
			return value{}, false
		}
	}
	return jsonValue(cur), true
}

func (r jsonRecord) each(fn func(string, value)) {
	for k, v := range r {
		fn(k, jsonValue(v))
	}
}

func jsonValue(v any) value {
	switch x := v.(type) {
	case nil:
		return value{kind: kNull}
	case string:
		return value{s: x}
	case json.Number:
		return value{s: x.String(), kind: kNum}
	case bool:
		if x {
			return value{s: "true", kind: kBool}
		}
		return value{s: "false", kind: kBool}
	case map[string]any:
		b, _ := json.Marshal(x)
		return value{s: string(b), kind: kObj, obj: x}
	default:
		b, _ := json.Marshal(x)
		return value{s: string(b), kind: kArr}
	}
}

// flatten calls fn for every leaf of a nested object under prefix, with dotted keys, skipping the
// paths in used.
func flatten(prefix string, obj map[string]any, used map[string]bool, fn func(string, value)) {
	for k, v := range obj {
		key := prefix + "." + k
		if used[key] {
			continue
		}
		if m, ok := v.(map[string]any); ok && usedUnder(used, key) {
			flatten(key, m, used, fn)
			continue
		}
		fn(key, jsonValue(v))
	}
}

func usedUnder(used map[string]bool, prefix string) bool {
	for k := range used {
		if strings.HasPrefix(k, prefix+".") {
			return true
		}
	}
	return false
}
