package source

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Mapping says how a source's records become rows of the standard interaction table (or, for
// another table, which source field feeds which column). Its JSON form is the mapping file of
// `lake ingest --mapping FILE`:
//
//	{"source": "retail", "format": "csv",
//	 "fields": {"user_id": "uid", "item_id": "product", "interaction_type": "action", "timestamp": "ts",
//	            "value": "price", "properties.store": "shop.id"},
//	 "types": {"pv": "view", "atc": "add_to_cart", "buy": "purchase"},
//	 "timestamp_format": "epoch_ms", "timezone": "Europe/Paris", "properties": true}
//
// A field's source is a column name, a dotted path into nested JSON (user.id), or a constant
// prefixed with ':' (":rating"). A column the mapping does not name is read from the source field
// of the same name, if there is one. "properties.KEY" sets one key of the properties map.
type Mapping struct {
	// Source is the value of the source column (default: the file's base name, or the writer's
	// name for the collector).
	Source string `json:"source,omitempty"`
	// Format is the file format (csv, tsv, json, ndjson), when the file's name does not say.
	Format string `json:"format,omitempty"`
	// Delimiter is the CSV field separator (default: detected from the header line).
	Delimiter string `json:"delimiter,omitempty"`
	// Header says whether a CSV file starts with a header line (default true). Without one, Columns
	// names the columns (default column1, column2, ...).
	Header  *bool    `json:"header,omitempty"`
	Columns []string `json:"columns,omitempty"`
	// Fields maps a table column to its source: a field name, a dotted path, or ":constant".
	Fields map[string]string `json:"fields,omitempty"`
	// Types renames interaction types (pv -> view).
	Types map[string]string `json:"types,omitempty"`
	// TimestampFormat is epoch_s, epoch_ms, epoch_us, rfc3339 or a Go layout; Timezone (an IANA
	// name) is the zone of times that carry no offset (default UTC).
	TimestampFormat string `json:"timestamp_format,omitempty"`
	Timezone        string `json:"timezone,omitempty"`
	// Properties puts every source field the mapping does not use into the properties map
	// (default true); false drops them.
	Properties *bool `json:"properties,omitempty"`
}

// LoadMapping reads a mapping file.
func LoadMapping(path string) (*Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mapping file: %w", err)
	}
	var m Mapping
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("mapping file %s: %v (the keys are source, format, delimiter, header, columns, fields, types, timestamp_format, timezone, properties)", path, err)
	}
	return &m, nil
}

// ParseMap parses the --map flag, DST=SRC pairs separated by commas, into m.Fields (created if
// nil). Pairs given here win over a mapping file's.
func (m *Mapping) ParseMap(flag string) error {
	if m.Fields == nil {
		m.Fields = map[string]string{}
	}
	for _, pair := range strings.Split(flag, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		dst, src, ok := strings.Cut(pair, "=")
		dst, src = strings.TrimSpace(dst), strings.TrimSpace(src)
		if !ok || dst == "" || src == "" {
			return fmt.Errorf("--map %q: want DST=SRC pairs, e.g. user_id=uid,item_id=product", pair)
		}
		m.Fields[dst] = src
	}
	return nil
}

// ParseTypes parses FROM=TO renames of interaction types (pv=view,atc=add_to_cart) into m.Types.
func (m *Mapping) ParseTypes(flag string) error {
	if m.Types == nil {
		m.Types = map[string]string{}
	}
	for _, pair := range strings.Split(flag, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		from, to, ok := strings.Cut(pair, "=")
		if !ok || strings.TrimSpace(from) == "" || strings.TrimSpace(to) == "" {
			return fmt.Errorf("--types %q: want FROM=TO pairs, e.g. pv=view,buy=purchase", pair)
		}
		m.Types[strings.TrimSpace(from)] = strings.TrimSpace(to)
	}
	return nil
}

func (m *Mapping) keepProperties() bool { return m == nil || m.Properties == nil || *m.Properties }

// validate checks the mapping against the table's columns.
func (m *Mapping) validate(columns []string) error {
	if m == nil {
		return nil
	}
	for dst, src := range m.Fields {
		if strings.HasPrefix(dst, "properties.") && len(dst) > len("properties.") {
			if !slices.Contains(columns, "properties") {
				return fmt.Errorf("mapping: %q: the table has no properties column", dst)
			}
		} else if !slices.Contains(columns, dst) {
			return fmt.Errorf("mapping: %q is not a column of the table (columns: %s)", dst, strings.Join(columns, ", "))
		}
		if dst == "event_date" {
			return fmt.Errorf("mapping: event_date is always derived from the timestamp; map the timestamp instead")
		}
		if src == "" || src == ":" && dst != "source" {
			return fmt.Errorf("mapping: %q has an empty source", dst)
		}
	}
	if m.Delimiter != "" && len(m.Delimiter) != 1 && m.Delimiter != `\t` {
		return fmt.Errorf("mapping: delimiter %q: want one character", m.Delimiter)
	}
	return nil
}
