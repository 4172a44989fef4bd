package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/zeebo/xxh3"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// Defaults of Options.
var (
	DefaultMinTime = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
)

const (
	// DefaultMaxFuture is how far past now a timestamp may be before it is quarantined.
	DefaultMaxFuture = 24 * time.Hour
	// MaxFieldBytes is the longest id, type or property value accepted (longer ones are
	// quarantined: they are not ids).
	MaxFieldBytes = 4096
	// maxRawBytes is the most of a refused record the quarantine keeps.
	maxRawBytes = 64 << 10
)

// Options configure a Standardizer. A nil *Options is the defaults: the interaction schema, the
// standard column names, the collector's timestamp rules.
type Options struct {
	// Schema is the table's schema (default table.InteractionSchema()). A schema that has the
	// interaction columns (user_id, item_id, interaction_type, timestamp, event_date) gets the
	// interaction rules; any other is filled column by column.
	Schema *txlog.StructType
	// Mapping maps source fields to columns (nil: the columns' own names).
	Mapping *Mapping
	// Source is the source column's value when the record and the mapping name none.
	Source string
	// File is recorded in the quarantine's file column (empty: null).
	File string
	// TimestampFormat and Timezone override the mapping's (see the Timestamp* constants).
	TimestampFormat string
	Timezone        string
	// MinTime and MaxFuture bound accepted timestamps: older than MinTime (default 1990-01-01) or
	// later than Now()+MaxFuture (default 24h) is quarantined. A negative MaxFuture disables the
	// upper bound.
	MinTime   time.Time
	MaxFuture time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MergeSchema (tables other than the interaction table) adds the source fields the table lacks
	// as new string columns instead of quarantining the records that carry them.
	MergeSchema bool
	// Seen holds the event_ids already taken; Standardizers that share one drop each other's
	// duplicates (default: a set of the Standardizer's own).
	Seen *Seen
	// Allocator allocates the batches' buffers (default memory.DefaultAllocator).
	Allocator memory.Allocator
}

// Counts are what a Standardizer did with the records it was given.
// Read = Written + Quarantined + Duplicate.
type Counts struct {
	Read        int64 `json:"rows_read"`
	Written     int64 `json:"rows_written"`
	Quarantined int64 `json:"rows_quarantined"`
	Duplicate   int64 `json:"rows_duplicate"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Read += o.Read
	c.Written += o.Written
	c.Quarantined += o.Quarantined
	c.Duplicate += o.Duplicate
}

// Batch is what Flush returns: the rows for the table, the rows for the quarantine table, and
// the counts of the records behind them.
type Batch struct {
	// Rows has the table's schema (plus new columns under MergeSchema); nil when no record made
	// it.
	Rows arrow.RecordBatch
	// Quarantine has QuarantineSchema; nil when no record was refused.
	Quarantine arrow.RecordBatch
	Counts     Counts
}

// EventIDs are the event_ids of Rows (nil for tables without an event_id column).
func (b *Batch) EventIDs() []string {
	if b.Rows == nil {
		return nil
	}
	i := b.Rows.Schema().FieldIndices("event_id")
	if len(i) == 0 {
		return nil
	}
	col, ok := b.Rows.Column(i[0]).(*array.String)
	if !ok {
		return nil
	}
	ids := make([]string, col.Len())
	for j := range ids {
		ids[j] = strings.Clone(col.Value(j))
	}
	return ids
}

// Release releases the batch's records.
func (b *Batch) Release() {
	if b.Rows != nil {
		b.Rows.Release()
		b.Rows = nil
	}
	if b.Quarantine != nil {
		b.Quarantine.Release()
		b.Quarantine = nil
	}
}

// Position is where a record was in its file: Line is 1-based and Offset the 0-based byte
// offset of the record's start; a zero Line means unknown (the collector).
type Position struct {
	File   string
	Line   int64
	Offset int64
}

// ConfigError is a problem of the command line or mapping that no record can fix (a bare number
// as a timestamp without a format): the call fails instead of quarantining every record.
type ConfigError struct {
	Err  error
	Hint string
}

func (e *ConfigError) Error() string {
	if e.Hint == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + "; " + e.Hint
}

func (e *ConfigError) Unwrap() error { return e.Err }

// spec is where one column's value comes from.
type spec struct {
	col      int      // index in the output schema
	path     []string // source path; nil with a constant
	constant *string
	csv      int // the path's column in the CSV file being read (-1: none; bindCSV sets it)
}

// Standardizer turns source records into Batches. Use one per goroutine.
type Standardizer struct {
	opts        Options
	mem         memory.Allocator
	schema      *arrow.Schema // output schema (grows under MergeSchema)
	cols        []txlog.StructField
	interaction bool
	ts          *tsParser
	maxFuture   int64 // the future bound as last computed (µs since the epoch); the clock only moves on
	minTime     int64
	source      string

	specs     []spec          // per output column of the table
	props     map[string]spec // properties.KEY specs
	used      map[string]bool // source paths the mapping uses (for properties)
	usedTop   map[string]bool // top-level source names used whole or in part
	keepProps bool
	types     map[string]string
	typeList  [][2]string // types as pairs, for renameType

	bld    *array.RecordBuilder
	extra  []*array.StringBuilder // MergeSchema columns beyond the table's
	qb     *array.RecordBuilder
	seen   *Seen // Options.Seen
	fast   fastRecord
	hashes []uint64 // the event_id hashes of the pending rows (interaction tables)
	count  Counts
	n      int // rows pending in bld

	// interaction column indexes
	iEvent, iUser, iItem, iType, iTS, iDate, iSource, iValue, iProps int
	scratch                                                          []value
	present                                                          []bool
	complex                                                          map[int]array.Builder
	hashBuf                                                          []byte
}

// NewStandardizer returns a Standardizer for opts.
func NewStandardizer(opts *Options) (*Standardizer, error) {
	s := &Standardizer{}
	if opts != nil {
		s.opts = *opts
	}
	o := &s.opts
	if o.Schema == nil {
		o.Schema = table.InteractionSchema()
	}
	if o.MinTime.IsZero() {
		o.MinTime = DefaultMinTime
	}
	if o.MaxFuture == 0 {
		o.MaxFuture = DefaultMaxFuture
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s.mem = o.Allocator
	if s.mem == nil {
		s.mem = memory.DefaultAllocator
	}
	m := o.Mapping
	format, zone := o.TimestampFormat, o.Timezone
	if m != nil {
		if format == "" {
			format = m.TimestampFormat
		}
		if zone == "" {
			zone = m.Timezone
		}
	}
	var err error
	if s.ts, err = newTSParser(format, zone); err != nil {
		return nil, &ConfigError{Err: err}
	}
	s.minTime = o.MinTime.UnixMicro()
	s.source = o.Source
	if m != nil && m.Source != "" {
		s.source = m.Source
	}
	if s.source == "" && o.File != "" {
		s.source = filepath.Base(o.File)
	}
	s.cols = slices.Clone(o.Schema.Fields)
	names := make([]string, len(s.cols))
	for i, f := range s.cols {
		names[i] = f.Name
	}
	if err := m.validate(names); err != nil {
		return nil, &ConfigError{Err: err}
	}
	s.interaction = isInteraction(o.Schema)
	if s.schema, err = deltaarrow.Schema(o.Schema); err != nil {
		return nil, err
	}
	s.keepProps = m.keepProperties()
	s.used, s.usedTop, s.props = map[string]bool{}, map[string]bool{}, map[string]spec{}
	if m != nil {
		s.types = m.Types
		for from, to := range m.Types {
			s.typeList = append(s.typeList, [2]string{from, to})
		}
	}
	idx := map[string]int{}
	for i, n := range names {
		idx[n] = i
	}
	for i, n := range names {
		src := n
		if m != nil {
			if v, ok := m.Fields[n]; ok {
				src = v
			}
		}
		s.specs = append(s.specs, s.makeSpec(i, src))
	}
	if m != nil {
		for dst, src := range m.Fields {
			if k, ok := strings.CutPrefix(dst, "properties."); ok {
				s.props[k] = s.makeSpec(-1, src)
			}
		}
	}
	if s.interaction {
		s.iEvent, s.iUser, s.iItem, s.iType = idx["event_id"], idx["user_id"], idx["item_id"], idx["interaction_type"]
		s.iTS, s.iDate = idx["timestamp"], idx["event_date"]
		s.iSource, s.iValue, s.iProps = index(idx, "source"), index(idx, "value"), index(idx, "properties")
		if s.iProps >= 0 {
			if mt, ok := s.cols[s.iProps].Type.(*txlog.MapType); !ok || mt.KeyType != txlog.String || mt.ValueType != txlog.String {
				return nil, fmt.Errorf("the table's properties column must be map<string,string>")
			}
		}
	}
	for i, f := range s.cols {
		if !supported(f.Type) {
			if _, err := deltaarrow.Type(f.Type); err != nil {
				return nil, err
			}
			if s.complex == nil {
				s.complex = map[int]array.Builder{}
			}
			s.complex[i] = array.NewBuilder(s.mem, s.schema.Field(i).Type)
		}
	}
	s.scratch = make([]value, len(s.cols))
	s.present = make([]bool, len(s.cols))
	if o.Seen == nil {
		o.Seen = NewSeen()
	}
	s.seen = o.Seen
	s.reset()
	return s, nil
}

func index(idx map[string]int, name string) int {
	if i, ok := idx[name]; ok {
		return i
	}
	return -1
}

// isInteraction reports whether schema has the interaction columns with their types.
func isInteraction(st *txlog.StructType) bool {
	want := map[string]txlog.DataType{"event_id": txlog.String, "user_id": txlog.String, "item_id": txlog.String,
		"interaction_type": txlog.String, "timestamp": txlog.Timestamp, "event_date": txlog.Date}
	for n, t := range want {
		f, ok := st.Field(n)
		if !ok || f.Type != t {
			return false
		}
	}
	if f, ok := st.Field("value"); ok && f.Type != txlog.Double {
		return false
	}
	return true
}

func (s *Standardizer) makeSpec(col int, src string) spec {
	if c, ok := strings.CutPrefix(src, ":"); ok {
		return spec{col: col, constant: &c, csv: -1}
	}
	path := strings.Split(src, ".")
	if _, isCol := s.opts.Schema.Field(src); isCol && len(path) > 1 {
		path = []string{src} // a column whose name has a dot
	}
	s.used[src] = true
	s.usedTop[path[0]] = true
	return spec{col: col, path: path, csv: -1}
}

// supported reports whether a column type is converted field by field (others come from JSON).
func supported(t txlog.DataType) bool {
	switch v := t.(type) {
	case *txlog.PrimitiveType:
		return v.Name != "binary" && !strings.HasPrefix(v.Name, "decimal")
	case *txlog.MapType:
		return v.KeyType == txlog.String && v.ValueType == txlog.String
	}
	return false
}

// bindCSV resolves the specs' paths to the columns of a CSV file's header.
func (s *Standardizer) bindCSV(index map[string]int) {
	bind := func(sp *spec) {
		sp.csv = -1
		if sp.path != nil && len(sp.path) == 1 {
			if i, ok := index[sp.path[0]]; ok {
				sp.csv = i
			}
		} else if sp.path != nil {
			if i, ok := index[strings.Join(sp.path, ".")]; ok { // a CSV column named a.b
				sp.csv = i
			}
		}
	}
	for i := range s.specs {
		bind(&s.specs[i])
	}
	for k, sp := range s.props {
		bind(&sp)
		s.props[k] = sp
	}
}

// futureLimit reads the clock and returns (and caches in s.maxFuture) the latest timestamp
// accepted now.
func (s *Standardizer) futureLimit() int64 {
	s.maxFuture = s.opts.Now().Add(s.opts.MaxFuture).UnixMicro()
	return s.maxFuture
}

func (s *Standardizer) reset() {
	s.bld = array.NewRecordBuilder(s.mem, s.schema)
	for _, e := range s.extra {
		e.Release()
	}
	s.extra = s.extra[:0]
	s.qb = array.NewRecordBuilder(s.mem, quarantineArrow)
	s.n = 0
	s.hashes = s.hashes[:0]
}

var quarantineArrow, _ = deltaarrow.Schema(QuarantineSchema())

// slowJSON turns the fast JSON object parser off (tests compare the two paths).
var slowJSON = false

// Remember marks eventID as already written: a later record with it is a duplicate.
func (s *Standardizer) Remember(eventID string) { s.seen.add(xxh3.HashString(eventID)) }

// Pending is the number of records given since the last Flush.
func (s *Standardizer) Pending() int { return int(s.count.Read) }

// Counts are the counts since the last Flush.
func (s *Standardizer) Counts() Counts { return s.count }

// AddJSON standardises one JSON object (a collector event, an NDJSON line). A value that is not
// a JSON object is quarantined. The only error is a *ConfigError.
func (s *Standardizer) AddJSON(raw []byte, pos Position) error {
	if !slowJSON && s.fast.parse(raw) {
		return s.add(&s.fast, raw, pos)
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil {
		s.count.Read++
		reason := "not a JSON object"
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			reason = "not a JSON object but a JSON " + te.Value
		} else if err != nil {
			reason = "not valid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
		}
		s.quarantine(raw, pos, reason, "")
		return nil
	}
	if dec.More() {
		s.count.Read++
		s.quarantine(raw, pos, "more than one JSON value on one line", "")
		return nil
	}
	return s.add(jsonRecord(obj), raw, pos)
}

// addRecord standardises a record that was read by one of the file readers.
func (s *Standardizer) add(r record, raw []byte, pos Position) error {
	s.count.Read++
	if !utf8.Valid(raw) {
		u := s.peekUser(r)
		if strings.ContainsRune(u, utf8.RuneError) {
			u = "" // decoded from the invalid bytes themselves: not an id to erase by
		}
		s.quarantine(raw, pos, "invalid UTF-8", u)
		return nil
	}
	var reason string
	var err error
	if s.interaction {
		reason, err = s.addInteraction(r)
	} else {
		reason, err = s.addGeneric(r)
	}
	if err != nil {
		s.count.Read--
		return err
	}
	if reason != "" {
		s.quarantine(raw, pos, reason, s.peekUser(r))
	}
	return nil
}

func (s *Standardizer) peekUser(r record) string {
	if s.iUser < 0 || !s.interaction {
		if i := slices.IndexFunc(s.cols, func(f txlog.StructField) bool { return f.Name == "user_id" }); i >= 0 {
			if v, ok := s.lookup(r, s.specs[i]); ok && utf8.ValidString(v.s) && len(v.s) <= MaxFieldBytes {
				return strings.TrimSpace(v.s)
			}
		}
		return ""
	}
	if v, ok := s.lookup(r, s.specs[s.iUser]); ok && utf8.ValidString(v.s) && len(v.s) <= MaxFieldBytes {
		return strings.TrimSpace(v.s)
	}
	return ""
}

func (s *Standardizer) lookup(r record, sp spec) (value, bool) {
	if sp.constant != nil {
		return value{s: *sp.constant}, true
	}
	if cr, ok := r.(*csvRecord); ok { // columns bound once per file by bindCSV
		if sp.csv < 0 || sp.csv >= len(cr.fields) {
			return value{kind: kNull}, false
		}
		return value{s: cr.fields[sp.csv]}, true
	}
	v, ok := r.get(sp.path)
	if !ok || v.kind == kNull {
		return value{kind: kNull}, false
	}
	return v, true
}

// required returns the trimmed text of a required string column, or a reason.
func (s *Standardizer) required(r record, col int) (string, string) {
	name := s.cols[col].Name
	v, ok := s.lookup(r, s.specs[col])
	if !ok {
		return "", "missing " + name + s.from(col)
	}
	if v.kind == kObj || v.kind == kArr {
		return "", name + " is a JSON " + map[kind]string{kObj: "object", kArr: "array"}[v.kind] + ", not a value"
	}
	t := strings.TrimSpace(v.s)
	if t == "" {
		return "", "empty " + name + s.from(col)
	}
	if len(t) > MaxFieldBytes {
		return "", fmt.Sprintf("%s is %d bytes long (at most %d)", name, len(t), MaxFieldBytes)
	}
	return t, ""
}

func (s *Standardizer) from(col int) string {
	sp := s.specs[col]
	if sp.path != nil && (len(sp.path) > 1 || sp.path[0] != s.cols[col].Name) {
		return " (source field " + strings.Join(sp.path, ".") + ")"
	}
	return ""
}

func fmtMicros(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.999999Z07:00")
}

// dropRows returns rec without the rows at the (ascending) indexes drop, releasing rec.
func dropRows(mem memory.Allocator, rec arrow.RecordBatch, drop []int) (arrow.RecordBatch, error) {
	defer rec.Release()
	mb := array.NewBooleanBuilder(mem)
	defer mb.Release()
	mb.Reserve(int(rec.NumRows()))
	for i, j := 0, 0; i < int(rec.NumRows()); i++ {
		keep := j >= len(drop) || drop[j] != i
		if !keep {
			j++
		}
		mb.UnsafeAppend(keep)
	}
	mask := mb.NewArray()
	defer mask.Release()
	return compute.FilterRecordBatch(compute.WithAllocator(context.Background(), mem), rec, mask, compute.DefaultFilterOptions())
}

// Close releases the Standardizer's builders; records not flushed are dropped.
func (s *Standardizer) Close() {
	s.bld.Release()
	s.qb.Release()
	for _, e := range s.extra {
		e.Release()
	}
	for _, c := range s.complex {
		c.Release()
	}
}
