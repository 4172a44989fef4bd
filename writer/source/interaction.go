package source

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lakehouse/lake/internal/units"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/zeebo/xxh3"
)

// The interaction rules: who did what to which item, when.

func (s *Standardizer) addInteraction(r record) (string, error) {
	user, why := s.required(r, s.iUser)
	if why != "" {
		return why, nil
	}
	item, why := s.required(r, s.iItem)
	if why != "" {
		return why, nil
	}
	typ, why := s.required(r, s.iType)
	if why != "" {
		return why, nil
	}
	typ = s.renameType(typ)
	tv, ok := s.lookup(r, s.specs[s.iTS])
	if !ok || strings.TrimSpace(tv.s) == "" {
		return "missing timestamp" + s.from(s.iTS), nil
	}
	us, err := s.ts.parse(strings.TrimSpace(tv.s), tv.kind == kNum)
	if errors.Is(err, ErrNumericTimestamp) {
		return "", &ConfigError{Err: fmt.Errorf("timestamp %q: %w", tv.s, err),
			Hint: "give --timestamp-format epoch_s, epoch_ms or epoch_us (or timestamp_format in the mapping file)"}
	}
	if err != nil {
		return err.Error(), nil
	}
	if us < s.minTime {
		return fmt.Sprintf("timestamp %s is before %s (--min-time)", fmtMicros(us), s.opts.MinTime.UTC().Format(time.RFC3339)), nil
	}
	if s.opts.MaxFuture > 0 {
		if us > s.maxFuture && us > s.futureLimit() { // the clock is read again only near the bound
			return fmt.Sprintf("timestamp %s is more than %s in the future (--max-future)", fmtMicros(us), s.opts.MaxFuture), nil
		}
	}
	day := int32(units.FloorDiv(us, 86_400_000_000))
	if dv, ok := s.lookup(r, s.specs[s.iDate]); ok && strings.TrimSpace(dv.s) != "" {
		d, err := time.Parse("2006-01-02", strings.TrimSpace(dv.s))
		if err != nil || dv.kind != kStr {
			return fmt.Sprintf("event_date %q is not a date YYYY-MM-DD (it is derived from the timestamp; leave it out)", dv.s), nil
		}
		if int32(d.Unix()/86400) != day {
			return fmt.Sprintf("event_date %s is not the UTC date of the timestamp %s", dv.s, fmtMicros(us)), nil
		}
	}
	src := s.source
	if s.iSource >= 0 {
		if v, ok := s.lookup(r, s.specs[s.iSource]); ok && strings.TrimSpace(v.s) != "" {
			src = strings.TrimSpace(v.s)
			if len(src) > MaxFieldBytes {
				return "source is too long", nil
			}
		}
	}
	var val float64
	hasVal := false
	if s.iValue >= 0 {
		if v, ok := s.lookup(r, s.specs[s.iValue]); ok && strings.TrimSpace(v.s) != "" {
			if v.kind == kBool || v.kind == kObj || v.kind == kArr {
				return fmt.Sprintf("value %s is not a number", v.s), nil
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(v.s), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Sprintf("value %q is not a finite number%s", v.s, s.from(s.iValue)), nil
			}
			val, hasVal = f, true
		}
	}
	props, why := s.properties(r)
	if why != "" {
		return why, nil
	}
	eid := ""
	if v, ok := s.lookup(r, s.specs[s.iEvent]); ok {
		if v.kind == kObj || v.kind == kArr {
			return "event_id is not a value", nil
		}
		eid = strings.TrimSpace(v.s)
		if len(eid) > MaxFieldBytes {
			return "event_id is too long", nil
		}
	}
	var h uint64
	if eid == "" {
		eid, h = s.deriveID(user, item, typ, us, val, hasVal)
	} else {
		h = xxh3.HashString(eid)
	}
	s.hashes = append(s.hashes, h) // duplicates are found in bulk by Flush

	b := s.bld
	b.Field(s.iEvent).(*array.StringBuilder).Append(eid)
	b.Field(s.iUser).(*array.StringBuilder).Append(user)
	b.Field(s.iItem).(*array.StringBuilder).Append(item)
	b.Field(s.iType).(*array.StringBuilder).Append(typ)
	b.Field(s.iTS).(*array.TimestampBuilder).Append(arrow.Timestamp(us))
	b.Field(s.iDate).(*array.Date32Builder).Append(arrow.Date32(day))
	if s.iSource >= 0 {
		sb := b.Field(s.iSource).(*array.StringBuilder)
		if src == "" {
			sb.AppendNull()
		} else {
			sb.Append(src)
		}
	}
	if s.iValue >= 0 {
		vb := b.Field(s.iValue).(*array.Float64Builder)
		if hasVal {
			vb.Append(val)
		} else {
			vb.AppendNull()
		}
	}
	if s.iProps >= 0 {
		appendProps(b.Field(s.iProps).(*array.MapBuilder), props)
	}
	for i := range s.cols { // columns beyond the standard ones (a widened interaction table)
		if s.isStandard(i) {
			continue
		}
		if err := s.appendGeneric(r, i); err != "" {
			// Unreachable for a standard table; a widened one gets nulls for what does not parse.
			b.Field(i).AppendNull()
		}
	}
	s.n++
	s.count.Written++
	return "", nil
}

func (s *Standardizer) isStandard(i int) bool {
	return i == s.iEvent || i == s.iUser || i == s.iItem || i == s.iType || i == s.iTS || i == s.iDate ||
		i == s.iSource || i == s.iValue || i == s.iProps
}

// deriveID is the event_id of a record without one: a hash of the standardised fields, so that
// the same record delivered twice gets the same id.
func (s *Standardizer) deriveID(user, item, typ string, us int64, val float64, hasVal bool) (string, uint64) {
	b := s.hashBuf[:0]
	b = append(b, user...)
	b = append(b, 0)
	b = append(b, item...)
	b = append(b, 0)
	b = append(b, typ...)
	b = append(b, 0)
	b = strconv.AppendInt(b, us, 10)
	if hasVal {
		b = append(b, 0)
		b = strconv.AppendFloat(b, val, 'g', -1, 64)
	}
	s.hashBuf = b
	h := xxh3.Hash128(b)
	var raw [16]byte
	for i := range 8 {
		raw[i] = byte(h.Hi >> (56 - 8*i))
		raw[8+i] = byte(h.Lo >> (56 - 8*i))
	}
	id := hex.EncodeToString(raw[:])
	return id, xxh3.HashString(id) // the key of the id as text, as for ids the source sends
}

type kv struct {
	k string
	v *string
}

// properties collects the properties map: the source's own properties object, properties.KEY
// mappings, and (unless the mapping says otherwise) every field the mapping did not use.
func (s *Standardizer) properties(r record) ([]kv, string) {
	if s.iProps < 0 {
		return nil, ""
	}
	var out []kv
	add := func(k string, v value) string {
		if len(k) > MaxFieldBytes || len(v.s) > 1<<20 {
			return fmt.Sprintf("property %.40q is too long", k)
		}
		if v.kind == kNull {
			out = append(out, kv{k: k})
			return ""
		}
		str := v.s
		out = append(out, kv{k: k, v: &str})
		return ""
	}
	propSpec := s.specs[s.iProps]
	if v, ok := s.lookup(r, propSpec); ok {
		switch v.kind {
		case kObj:
			for k, x := range v.obj {
				if why := add(k, jsonValue(x)); why != "" {
					return nil, why
				}
			}
		case kStr:
			if strings.TrimSpace(v.s) != "" { // a CSV column holding a JSON object
				var m map[string]any
				d := json.NewDecoder(strings.NewReader(v.s))
				d.UseNumber()
				if err := d.Decode(&m); err != nil {
					return nil, fmt.Sprintf("properties %.60q is not a JSON object", v.s)
				}
				for k, x := range m {
					if why := add(k, jsonValue(x)); why != "" {
						return nil, why
					}
				}
			}
		default:
			return nil, "properties is not an object"
		}
	}
	for k, sp := range s.props {
		if v, ok := s.lookup(r, sp); ok {
			if why := add(k, v); why != "" {
				return nil, why
			}
		}
	}
	if cr, ok := r.(*csvRecord); ok && s.keepProps { // the CSV fast path: no closure, no map lookups
		for i, f := range cr.fields {
			if i < len(cr.used) && !cr.used[i] && f != "" && !(cr.names[i] == "properties" && propSpec.path != nil && propSpec.path[0] == "properties") {
				if why := add(cr.names[i], value{s: f}); why != "" {
					return nil, why
				}
			}
		}
	} else if s.keepProps {
		var why string
		r.each(func(name string, v value) {
			if why != "" || name == "properties" && propSpec.path != nil && propSpec.path[0] == "properties" {
				return
			}
			if s.usedTop[name] {
				if v.kind == kObj {
					flatten(name, v.obj, s.used, func(k string, v value) {
						if why == "" {
							why = add(k, v)
						}
					})
				}
				return
			}
			if v.kind == kStr && v.s == "" {
				return // an empty CSV cell says nothing
			}
			why = add(name, v)
		})
		if why != "" {
			return nil, why
		}
	}
	if len(out) > 1 {
		sort.SliceStable(out, func(i, j int) bool { return out[i].k < out[j].k })
		// Later keys win: keep the last of each run of equal keys.
		w := 0
		for i := range out {
			if w > 0 && out[w-1].k == out[i].k {
				out[w-1] = out[i]
				continue
			}
			out[w] = out[i]
			w++
		}
		out = out[:w]
	}
	for _, p := range out {
		if !utf8.ValidString(p.k) || p.v != nil && !utf8.ValidString(*p.v) {
			return nil, "invalid UTF-8 in properties"
		}
	}
	return out, ""
}

func appendProps(mb *array.MapBuilder, props []kv) {
	if props == nil {
		mb.AppendNull()
		return
	}
	mb.Append(true)
	kb := mb.KeyBuilder().(*array.StringBuilder)
	ib := mb.ItemBuilder().(*array.StringBuilder)
	for _, p := range props {
		kb.Append(p.k)
		if p.v == nil {
			ib.AppendNull()
		} else {
			ib.Append(*p.v)
		}
	}
}

// renameType applies the mapping's interaction type renames. A handful of renames is searched
// as a slice (cheaper per row than a map lookup of a short string); more, through the map.
func (s *Standardizer) renameType(typ string) string {
	if len(s.types) > 8 {
		if to, ok := s.types[typ]; ok {
			return to
		}
		return typ
	}
	for _, r := range s.typeList {
		if r[0] == typ {
			return r[1]
		}
	}
	return typ
}
