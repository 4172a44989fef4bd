package source

import (
	"bytes"
	"encoding/json"
	"strings"
	"unsafe"
)

// fastRecord is a JSON object parsed by parse: its top-level fields in order, strings
// unescaped, numbers and booleans as their literal text, nested objects decoded (with
// encoding/json) and arrays kept as their JSON text. It holds views of the line it was parsed
// from, valid until the next record is read.
type fastRecord struct {
	keys []string
	vals []value
}

func (r *fastRecord) get(path []string) (value, bool) {
	for i := range r.keys {
		if r.keys[i] != path[0] {
			continue
		}
		v := r.vals[i]
		if len(path) == 1 {
			return v, true
		}
		if v.kind != kObj {
			return value{}, false
		}
		return jsonRecord(v.obj).get(path[1:])
	}
	return value{}, false
}

func (r *fastRecord) each(fn func(string, value)) {
	for i, k := range r.keys {
		fn(k, r.vals[i])
	}
}

// parse parses one JSON object. ok is false for anything it does not handle exactly as
// encoding/json would (a syntax error, trailing data, a key given twice): the caller then takes
// the encoding/json path, which also words the error.
func (r *fastRecord) parse(b []byte) (ok bool) {
	r.keys, r.vals = r.keys[:0], r.vals[:0]
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipWS(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		k, next, ok := scanString(b, i)
		if !ok {
			return false
		}
		i = skipWS(b, next)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		v, next, ok := scanValue(b, i)
		if !ok {
			return false
		}
		for _, seen := range r.keys {
			if seen == k {
				return false // a key given twice: encoding/json keeps the last
			}
		}
		r.keys = append(r.keys, k)
		r.vals = append(r.vals, v)
		i = skipWS(b, next)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			return skipWS(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return false
		}
		i = skipWS(b, i+1)
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads the string starting at b[i] == '"'. Without escapes it is a view of b;
// with them it is decoded by encoding/json.
func scanString(b []byte, i int) (string, int, bool) {
	j := i + 1
	escaped := false
	for j < len(b) {
		c := b[j]
		if c == '"' {
			break
		}
		if c == '\\' {
			escaped = true
			j += 2
			continue
		}
		if c < 0x20 {
			return "", 0, false // a control character: invalid JSON
		}
		j++
	}
	if j >= len(b) {
		return "", 0, false
	}
	if !escaped {
		if j == i+1 {
			return "", j + 1, true
		}
		return unsafe.String(&b[i+1], j-i-1), j + 1, true
	}
	var s string
	if err := json.Unmarshal(b[i:j+1], &s); err != nil {
		return "", 0, false
	}
	return s, j + 1, true
}

// scanValue reads the value starting at b[i].
func scanValue(b []byte, i int) (value, int, bool) {
	if i >= len(b) {
		return value{}, 0, false
	}
	switch c := b[i]; {
	case c == '"':
		s, next, ok := scanString(b, i)
		return value{s: s}, next, ok
	case c == '{' || c == '[':
		end, ok := matchClose(b, i)
		if !ok {
			return value{}, 0, false
		}
		raw := b[i:end]
		if c == '[' {
			var x []any
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			if err := d.Decode(&x); err != nil {
				return value{}, 0, false
			}
			return jsonValue(x), end, true // the same text as encoding/json's path gives
		}
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			return value{}, 0, false
		}
		return jsonValue(m), end, true
	case c == 't' && bytes.HasPrefix(b[i:], []byte("true")):
		return value{s: "true", kind: kBool}, i + 4, true
	case c == 'f' && bytes.HasPrefix(b[i:], []byte("false")):
		return value{s: "false", kind: kBool}, i + 5, true
	case c == 'n' && bytes.HasPrefix(b[i:], []byte("null")):
		return value{kind: kNull}, i + 4, true
	case c == '-' || c >= '0' && c <= '9':
		j := i
		for j < len(b) && strings.IndexByte("+-0123456789.eE", b[j]) >= 0 {
			j++
		}
		if !validNumber(b[i:j]) {
			return value{}, 0, false
		}
		return value{s: unsafe.String(&b[i], j-i), kind: kNum}, j, true
	}
	return value{}, 0, false
}

// matchClose returns the index after the bracket that closes the one at b[i], skipping strings.
func matchClose(b []byte, i int) (int, bool) {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			j++
			for j < len(b) && b[j] != '"' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(b) {
				return 0, false
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, true
			}
		}
	}
	return 0, false
}

// validNumber checks the JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(s []byte) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return false
	}
	if s[i] == '0' {
		i++
	} else if s[i] >= '1' && s[i] <= '9' {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}
