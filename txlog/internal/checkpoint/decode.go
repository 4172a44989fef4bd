package checkpoint

// Parquet checkpoints, decoding: classic, multi-part, V2 and sidecar checkpoint files into
// Actions (encoding is in encode.go, stats_parsed as JSON in statsjson.go).
//
// Decoding reads one row group at a time and, in it, only the leaf columns the Action types hold
// (no partitionValues_parsed, no unknown fields, no stats_parsed unless the row group has adds
// without a JSON stats string). Each leaf is read directly from its column chunk, page by page,
// as definition/repetition levels and values, and rows are assembled from them: the columns of an
// action are only looked at in rows where that action is present (runs of null rows are skipped
// in bulk). Strings are copied once, from the decompressed page into an arena that the returned
// strings share; repeated partition values and tags are interned and adds with equal partition
// values share one map; Add, Remove and DeletionVector values come from slabs. So a million adds
// cost a few thousand allocations besides their maps of tags. The add.stats column, most of a
// checkpoint's bytes, is decoded ahead by a second goroutine. stats_parsed, when it must be read,
// is read through Arrow (pqarrow) and rendered as JSON.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/lakehouse/lake/internal/delta"
)

// ---------------------------------------------------------------------------------------------
// Decoding

// ReadOption tunes Decode.
type ReadOption func(*pqReadConfig)

type pqReadConfig struct {
	skipStats   bool
	only        map[string]bool // top-level action columns to read; nil reads all
	forceParsed bool            // tests: render stats from stats_parsed even when stats is set
	sink        AddSink         // when set, adds go to it with their stats kept out (WithAddSink)
}

// WithoutStats makes Decode leave Add.Stats empty and skip reading the stats columns (stats and
// stats_parsed), which are most of a checkpoint's bytes.
func WithoutStats() ReadOption {
	return func(c *pqReadConfig) { c.skipStats = true }
}

// AddSink receives the adds of a checkpoint in place of Decode's yield, with their JSON stats
// kept out of them: a snapshot of a large table keeps a million adds compactly and their stats
// compressed in blocks (see WithAddSink). Decode calls the methods in this order: Rows once,
// before any row is decoded (not at all when the file has none of the columns asked for); then,
// for each row group whose stats column is read, NewStatsWriter once; and Add once per add, in
// file order. Other actions still go to yield.
type AddSink interface {
	// Rows is told the file's row count, an upper bound on its adds (to size a table once).
	Rows(n int64)
	// Add receives one add. Its Stats is empty when the stats went to a StatsWriter (ref.Len >
	// 0 says where), and otherwise is what Decode would have yielded (JSON rendered from
	// stats_parsed, or empty). The *Add itself is
	// reused after Add returns: keep its field values (strings, maps and pointers are not
	// reused, and the maps may be shared between adds: read-only), never the pointer. An error
	// stops decoding and is returned as is.
	Add(a *delta.Add, ref StatsRef) error
	// NewStatsWriter returns the writer for one row group's add.stats column. It is used by one
	// goroutine, not Decode's, while Add is called from Decode's: the ref of a row's stats is
	// returned by Put before that row's Add, and the writer is closed before Decode moves to the
	// next row group or returns.
	NewStatsWriter() StatsWriter
}

// StatsWriter keeps the JSON stats of adds for an AddSink.
type StatsWriter interface {
	// Put keeps a copy of stats (non-empty; its bytes are only valid during the call) and returns
	// where it is.
	Put(stats []byte) StatsRef
	// Close finishes the writer; there is no Put after it.
	Close()
}

// StatsRef is where a StatsWriter keeps one add's stats. Block and Off mean what the writer
// says; Len is the length of the stats, and 0 (the zero StatsRef) means there are none kept.
type StatsRef struct{ Block, Off, Len uint32 }

// WithAddSink makes Decode pass adds to sink, their JSON stats to sink's StatsWriters, instead
// of yielding them; see AddSink.
func WithAddSink(sink AddSink) ReadOption {
	return func(c *pqReadConfig) { c.sink = sink }
}

// WithActions restricts Decode to the named top-level action columns
// ("add", "remove", "metaData", "protocol", "txn", "domainMetadata", "sidecar",
// "checkpointMetadata"); the other columns are not read at all.
func WithActions(names ...string) ReadOption {
	return func(c *pqReadConfig) {
		c.only = make(map[string]bool, len(names))
		for _, n := range names {
			c.only[n] = true
		}
	}
}

// pqActionOrder is the order in which the actions of one row are yielded (a valid checkpoint has
// one action per row).
var pqActionOrder = []string{"checkpointMetadata", "protocol", "metaData", "txn", "domainMetadata",
	"sidecar", "add", "remove"}

// Decode decodes one Parquet checkpoint file of size bytes read through r: a classic
// checkpoint, one part of a multi-part checkpoint, a V2 (UUID-named) Parquet checkpoint, or a
// V2 sidecar file. It calls yield once per action, in file order; an error from yield stops
// decoding and is returned as is. r is read with a few large ReadAt calls (the footer, then
// each needed column chunk of one row group at a time), some of them concurrent (as io.ReaderAt
// allows); nothing reads r after Decode returns.
//
// The actions are the caller's, but their strings share memory with each other, and the
// PartitionValues maps (and their *string values) of adds and removes with equal partition
// values are one shared map: treat maps and pointed-to values as read-only.
//
// Action columns absent from the file are simply absent, fields absent from a column are zero
// (nil for optional fields), and unknown columns and fields (cdc, commitInfo,
// partitionValues_parsed, stats_parsed when a JSON stats string is present, ...) are not read.
// When an add has no JSON stats but the file has stats_parsed, Add.Stats is the equivalent JSON
// as Spark writes it (numRecords, minValues, maxValues, nullCount, tightBounds; dates
// YYYY-MM-DD, timestamps RFC 3339 in UTC with milliseconds, decimals as numbers; nulls left out).
//
// A file that is not Parquet, or whose columns have types other than the protocol's, is an error
// that names the column and the expected type; callers add the file's path. Malformed input is an
// error, never a panic.
func Decode(r io.ReaderAt, size int64, yield func(delta.Action) error, opts ...ReadOption) (err error) {
	var cfg pqReadConfig
	for _, o := range opts {
		o(&cfg)
	}
	d := &pqDecoder{cfg: cfg, yield: yield, intern: newPQInterner(),
		pvCache: map[string]map[string]*string{}, emptyPV: map[string]*string{}}
	defer func() {
		if p := recover(); p != nil {
			if d.inYield {
				panic(p)
			}
			err = fmt.Errorf("malformed checkpoint: %v", p)
		}
	}()
	return d.decode(r, size)
}

type pqDecoder struct {
	cfg     pqReadConfig
	yield   func(delta.Action) error
	inYield bool

	intern *pqInterner
	arena  pqArena
	adds   pqSlab[delta.Add]
	// scratchAdd is the add handed to cfg.sink.
	scratchAdd delta.Add
	rems       pqSlab[delta.Remove]
	dvs        pqSlab[delta.DeletionVector]
	ints       pqSlab[int64]
	strs       pqSlab[string]

	// Adds with equal partition values share one map: a table has far fewer partitions than
	// files.
	pvCache map[string]map[string]*string
	pvKey   []byte
	emptyPV map[string]*string

	pf       *file.Reader
	fr       *pqarrow.FileReader // for stats_parsed, made on first use
	rowGroup int
	row      int   // row in the row group
	rowBase  int64 // row in the file of the row group's first row
	parsed   *pqParsedStats
	stats    *pqStatsPrefetch
	ferr     error // the first error of the row being decoded
}

func (d *pqDecoder) decode(r io.ReaderAt, size int64) error {
	if size < 12 {
		return fmt.Errorf("not a Parquet file: %d bytes", size)
	}
	pf, err := file.NewParquetReader(io.NewSectionReader(r, 0, size),
		file.WithReadProps(parquet.NewReaderProperties(memory.DefaultAllocator)))
	if err != nil {
		return fmt.Errorf("not a readable Parquet file: %w", err)
	}
	defer pf.Close()
	d.pf = pf
	sch := pf.MetaData().Schema
	root := sch.Root()

	// Check the schema once; every row group is then bound the same way.
	var plan []*pqActionPlan
	for _, name := range pqActionOrder {
		if d.cfg.only != nil && !d.cfg.only[name] {
			continue
		}
		i := root.FieldIndexByName(name)
		if i < 0 {
			continue
		}
		p, err := d.planAction(sch, root.Field(i), name)
		if err != nil {
			return err
		}
		if p != nil {
			plan = append(plan, p)
		}
	}
	if len(plan) == 0 {
		return nil
	}
	if d.cfg.sink != nil {
		d.cfg.sink.Rows(pf.NumRows())
	}

	for rg := 0; rg < pf.NumRowGroups(); rg++ {
		rgm := pf.MetaData().RowGroup(rg)
		n := rgm.NumRows()
		// Every row of a checkpoint holds an action with a distinct path, id or name: more than a
		// few rows per byte of file is a corrupt row count, not data (and would only spin).
		if n < 0 || n > pqMaxRowsPerByte*size+1024 {
			return fmt.Errorf("row group %d claims %d rows in a file of %d bytes", rg, n, size)
		}
		if n > 0 {
			if err := d.readRowGroup(rg, n, plan); err != nil {
				return err
			}
		}
		d.rowBase += n
	}
	return nil
}

func (d *pqDecoder) readRowGroup(rg int, nrows int64, plan []*pqActionPlan) error {
	d.rowGroup = rg
	rgr := d.pf.RowGroup(rg)
	acts := make([]*pqAction, 0, len(plan))
	for _, p := range plan {
		a, err := d.bindAction(rgr, p)
		if err != nil {
			return err
		}
		acts = append(acts, a)
	}
	d.parsed = nil
	d.stats = nil
	for _, a := range acts {
		if a.add != nil && a.add.statsField != nil {
			l, err := d.openLeaf(rgr, a.add.statsField.leaf, a.add.statsField.path)
			if err != nil {
				return err
			}
			var sw StatsWriter
			if d.cfg.sink != nil {
				sw = d.cfg.sink.NewStatsWriter()
			}
			d.stats = startStatsPrefetch(l, nrows, sw)
		}
		if a.add != nil && a.add.needParsed {
			ps, err := d.openParsedStats(rg)
			if err != nil {
				return err
			}
			d.parsed = ps
		}
	}
	defer func() {
		if d.parsed != nil {
			d.parsed.release()
			d.parsed = nil
		}
		if d.stats != nil {
			d.stats.stop()
			d.stats = nil
		}
	}()
	for r := 0; int64(r) < nrows; r++ {
		d.row = r
		for _, a := range acts {
			if err := a.row(d); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *pqDecoder) emit(a delta.Action) error {
	d.inYield = true
	err := d.yield(a)
	d.inYield = false
	return err
}

func (d *pqDecoder) rowErr(format string, args ...any) error {
	return fmt.Errorf("row %d (row group %d): %s", d.rowBase+int64(d.row), d.rowGroup, fmt.Sprintf(format, args...))
}

// ---- schema plan -------------------------------------------------------------------------------

type pqKind int

const (
	pqString pqKind = iota
	pqLong
	pqInt
	pqBoolean
	pqStrMap
	pqStrList
	pqStruct
)

func (k pqKind) String() string {
	return [...]string{"a string", "a long (int64)", "an int (int32)", "a boolean", "a map<string,string>",
		"an array<string>", "a struct"}[k]
}

// pqFieldSpec names a field of an action and its type in the protocol's checkpoint schema.
type pqFieldSpec struct {
	name string
	kind pqKind
	sub  []pqFieldSpec // pqStruct
}

var pqDVSpec = []pqFieldSpec{{"storageType", pqString, nil}, {"pathOrInlineDv", pqString, nil},
	{"offset", pqInt, nil}, {"sizeInBytes", pqInt, nil}, {"cardinality", pqLong, nil}}

// pqSpecs are the fields Decode reads. The first field that is in the file and not
// repeated tells, row by row, whether the action is present.
var pqSpecs = map[string][]pqFieldSpec{
	"add": {{"path", pqString, nil}, {"partitionValues", pqStrMap, nil}, {"size", pqLong, nil},
		{"modificationTime", pqLong, nil}, {"dataChange", pqBoolean, nil}, {"stats", pqString, nil},
		{"tags", pqStrMap, nil}, {"deletionVector", pqStruct, pqDVSpec}, {"baseRowId", pqLong, nil},
		{"defaultRowCommitVersion", pqLong, nil}, {"clusteringProvider", pqString, nil}},
	"remove": {{"path", pqString, nil}, {"deletionTimestamp", pqLong, nil}, {"dataChange", pqBoolean, nil},
		{"extendedFileMetadata", pqBoolean, nil}, {"partitionValues", pqStrMap, nil}, {"size", pqLong, nil},
		{"stats", pqString, nil}, {"tags", pqStrMap, nil}, {"deletionVector", pqStruct, pqDVSpec},
		{"baseRowId", pqLong, nil}, {"defaultRowCommitVersion", pqLong, nil}},
	"metaData": {{"id", pqString, nil}, {"name", pqString, nil}, {"description", pqString, nil},
		{"format", pqStruct, []pqFieldSpec{{"provider", pqString, nil}, {"options", pqStrMap, nil}}},
		{"schemaString", pqString, nil}, {"partitionColumns", pqStrList, nil}, {"createdTime", pqLong, nil},
		{"configuration", pqStrMap, nil}},
	"protocol": {{"minReaderVersion", pqInt, nil}, {"minWriterVersion", pqInt, nil},
		{"readerFeatures", pqStrList, nil}, {"writerFeatures", pqStrList, nil}},
	"txn":            {{"appId", pqString, nil}, {"version", pqLong, nil}, {"lastUpdated", pqLong, nil}},
	"domainMetadata": {{"domain", pqString, nil}, {"configuration", pqString, nil}, {"removed", pqBoolean, nil}},
	"sidecar": {{"path", pqString, nil}, {"sizeInBytes", pqLong, nil}, {"modificationTime", pqLong, nil},
		{"tags", pqStrMap, nil}},
	"checkpointMetadata": {{"version", pqLong, nil}, {"tags", pqStrMap, nil}},
}

// pqFieldPlan is a field found in the file: its column(s) and definition levels.
type pqFieldPlan struct {
	spec pqFieldSpec
	path string
	// Primitive fields: the leaf. Maps: key and (optional) value leaves. Lists: the element.
	leaf, leaf2 int
	// nullDef: below it the field is null. emptyDef (maps, lists): below it the field is
	// empty. Primitive values are present at the leaf's maximum definition level.
	nullDef, emptyDef int16
	sub               []*pqFieldPlan // pqStruct, in spec order; nil entries for absent fields
}

type pqActionPlan struct {
	name     string
	def      int16 // definition level of the action struct: below it the row has no action
	fields   []*pqFieldPlan
	presence int // index in fields of the leaf that tells whether the action is present
	// add: leaves whose row group statistics tell whether stats_parsed is needed.
	pathLeaf, statsLeaf int
	hasParsed           bool
}

func pqDefLevel(n schema.Node) int16 {
	var d int16
	for ; n != nil && n.Parent() != nil; n = n.Parent() {
		if n.RepetitionType() != parquet.Repetitions.Required {
			d++
		}
	}
	return d
}

func pqRepeated(n schema.Node) bool { return n.RepetitionType() == parquet.Repetitions.Repeated }

func pqTypeErr(col string, want pqKind, got string) error {
	return fmt.Errorf("checkpoint column %s: want %s, found %s", col, want, got)
}

func pqNodeDesc(n schema.Node) string {
	if p, ok := n.(*schema.PrimitiveNode); ok {
		s := p.PhysicalType().String()
		if pqRepeated(n) {
			s = "repeated " + s
		}
		return s
	}
	g := n.(*schema.GroupNode)
	if lt := g.LogicalType(); lt != nil && lt.String() != "None" {
		return "a group (" + lt.String() + ")"
	}
	return "a group"
}

func (d *pqDecoder) planAction(sch *schema.Schema, n schema.Node, name string) (*pqActionPlan, error) {
	g, ok := n.(*schema.GroupNode)
	if !ok || pqRepeated(n) {
		return nil, pqTypeErr(name, pqStruct, pqNodeDesc(n))
	}
	p := &pqActionPlan{name: name, def: pqDefLevel(g), presence: -1, pathLeaf: -1, statsLeaf: -1}
	for _, spec := range pqSpecs[name] {
		if name == "add" && spec.name == "stats" && d.cfg.skipStats {
			p.fields = append(p.fields, nil)
			continue
		}
		fp, err := planField(sch, g, spec, name+"."+spec.name)
		if err != nil {
			return nil, err
		}
		p.fields = append(p.fields, fp)
		if fp != nil && p.presence < 0 && (spec.kind <= pqBoolean) {
			p.presence = len(p.fields) - 1
		}
	}
	if name == "add" || name == "remove" || name == "sidecar" {
		if p.fields[0] == nil {
			return nil, fmt.Errorf("checkpoint column %s has no path field", name)
		}
	}
	if p.presence < 0 {
		// No field this decoder knows, or only maps and lists: nothing to decode.
		return nil, nil
	}
	if name == "add" {
		p.pathLeaf = p.fields[0].leaf
		if f := p.fields[5]; f != nil {
			p.statsLeaf = f.leaf
		}
		if !d.cfg.skipStats {
			if i := g.FieldIndexByName("stats_parsed"); i >= 0 {
				if sg, ok := g.Field(i).(*schema.GroupNode); ok && !pqRepeated(sg) {
					p.hasParsed = true
				}
			}
		}
	}
	return p, nil
}

// planField finds spec in parent and checks its type; nil when absent.
func planField(sch *schema.Schema, parent *schema.GroupNode, spec pqFieldSpec, path string) (*pqFieldPlan, error) {
	i := parent.FieldIndexByName(spec.name)
	if i < 0 {
		return nil, nil
	}
	n := parent.Field(i)
	fp := &pqFieldPlan{spec: spec, path: path, leaf: -1, leaf2: -1, nullDef: pqDefLevel(n)}
	switch spec.kind {
	case pqString, pqLong, pqInt, pqBoolean:
		pn, ok := n.(*schema.PrimitiveNode)
		if !ok || pqRepeated(n) || !pqPhysicalOK(spec.kind, pn.PhysicalType()) {
			return nil, pqTypeErr(path, spec.kind, pqNodeDesc(n))
		}
		fp.leaf = sch.ColumnIndexByNode(pn)
	case pqStruct:
		g, ok := n.(*schema.GroupNode)
		if !ok || pqRepeated(n) {
			return nil, pqTypeErr(path, spec.kind, pqNodeDesc(n))
		}
		any := false
		for _, s := range spec.sub {
			sp, err := planField(sch, g, s, path+"."+s.name)
			if err != nil {
				return nil, err
			}
			fp.sub = append(fp.sub, sp)
			any = any || sp != nil
		}
		if !any {
			return nil, nil
		}
	case pqStrMap:
		// optional group m (MAP) { repeated group key_value { required binary key; optional binary value } },
		// or the repeated key/value group itself.
		var kv *schema.GroupNode
		if g, ok := n.(*schema.GroupNode); ok {
			if pqRepeated(g) {
				kv = g
			} else if g.NumFields() == 1 && pqRepeated(g.Field(0)) {
				kv, _ = g.Field(0).(*schema.GroupNode)
			}
		}
		if kv == nil || kv.NumFields() < 1 || kv.NumFields() > 2 {
			return nil, pqTypeErr(path, spec.kind, pqNodeDesc(n))
		}
		for j := 0; j < kv.NumFields(); j++ {
			pn, ok := kv.Field(j).(*schema.PrimitiveNode)
			if !ok || pqRepeated(pn) || pn.PhysicalType() != parquet.Types.ByteArray {
				return nil, pqTypeErr(path, spec.kind, "a map with "+pqNodeDesc(kv.Field(j))+" entries")
			}
			if j == 0 {
				fp.leaf = sch.ColumnIndexByNode(pn)
			} else {
				fp.leaf2 = sch.ColumnIndexByNode(pn)
			}
		}
		if pqRepeated(n) {
			fp.nullDef = 0 // a bare repeated group cannot be null, only empty
		}
		fp.emptyDef = pqDefLevel(kv)
	case pqStrList:
		// optional group l (LIST) { repeated group list { optional binary element } },
		// the two-level form with a repeated binary, or a bare repeated binary.
		var elem *schema.PrimitiveNode
		var rep schema.Node
		switch v := n.(type) {
		case *schema.PrimitiveNode:
			if pqRepeated(v) {
				elem, rep = v, v
			}
		case *schema.GroupNode:
			if !pqRepeated(v) && v.NumFields() == 1 && pqRepeated(v.Field(0)) {
				rep = v.Field(0)
				switch c := rep.(type) {
				case *schema.PrimitiveNode:
					elem = c
				case *schema.GroupNode:
					if c.NumFields() == 1 {
						if e, ok := c.Field(0).(*schema.PrimitiveNode); ok && !pqRepeated(e) {
							elem = e
						}
					}
				}
			}
		}
		if elem == nil || elem.PhysicalType() != parquet.Types.ByteArray {
			return nil, pqTypeErr(path, spec.kind, pqNodeDesc(n))
		}
		fp.leaf = sch.ColumnIndexByNode(elem)
		if pqRepeated(n) {
			fp.nullDef = 0
		}
		fp.emptyDef = pqDefLevel(rep)
	}
	return fp, nil
}

func pqPhysicalOK(k pqKind, t parquet.Type) bool {
	switch k {
	case pqString:
		return t == parquet.Types.ByteArray
	case pqLong, pqInt:
		return t == parquet.Types.Int64 || t == parquet.Types.Int32
	case pqBoolean:
		return t == parquet.Types.Boolean
	}
	return false
}

// pqAllAddsHaveStats reports, from the row group's column statistics, whether every add with a
// path also has a JSON stats string (so stats_parsed need not be read). Without statistics it
// answers false.
func pqAllAddsHaveStats(rgm *metadata.RowGroupMetaData, pathLeaf, statsLeaf int) bool {
	if statsLeaf < 0 || pathLeaf < 0 {
		return false
	}
	nulls := func(leaf int) (int64, bool) {
		cc, err := rgm.ColumnChunk(leaf)
		if err != nil {
			return 0, false
		}
		st, err := cc.Statistics()
		if err != nil || st == nil || !st.HasNullCount() {
			return 0, false
		}
		return st.NullCount(), true
	}
	pn, ok1 := nulls(pathLeaf)
	sn, ok2 := nulls(statsLeaf)
	return ok1 && ok2 && pn == sn
}

// ---- leaf cursors ------------------------------------------------------------------------------

const pqLevelBatch = 4096

// pqMaxRowsPerByte bounds the rows a file of a given size may claim.
const pqMaxRowsPerByte = 16

// pqLeaf reads the levels and values of one leaf column chunk, one level at a time.
type pqLeaf struct {
	path           string
	maxDef, maxRep int16
	typ            parquet.Type
	rdr            file.ColumnChunkReader
	ba             *file.ByteArrayColumnChunkReader
	i64            *file.Int64ColumnChunkReader
	i32            *file.Int32ColumnChunkReader
	bo             *file.BooleanColumnChunkReader

	defs, reps []int16
	bav        []parquet.ByteArray
	i64v       []int64
	i32v       []int32
	bov        []bool
	n, pos     int // levels buffered, next level
	nv, vpos   int // values buffered, next value

	presence bool // advanced by the action, not by its field
	// The current level: its definition and repetition levels, and its value's index (-1 when
	// the level has no value).
	def, rep int16
	vi       int
}

func (d *pqDecoder) openLeaf(rgr *file.RowGroupReader, idx int, path string) (*pqLeaf, error) {
	cr, err := rgr.Column(idx)
	if err != nil {
		return nil, fmt.Errorf("column %s: %w", path, err)
	}
	descr := cr.Descriptor()
	l := &pqLeaf{path: path, maxDef: descr.MaxDefinitionLevel(), maxRep: descr.MaxRepetitionLevel(),
		typ: cr.Type(), rdr: cr, vi: -1}
	if l.maxDef > 0 {
		l.defs = make([]int16, pqLevelBatch)
	}
	if l.maxRep > 0 {
		l.reps = make([]int16, pqLevelBatch)
	}
	switch r := cr.(type) {
	case *file.ByteArrayColumnChunkReader:
		l.ba, l.bav = r, make([]parquet.ByteArray, pqLevelBatch)
	case *file.Int64ColumnChunkReader:
		l.i64, l.i64v = r, make([]int64, pqLevelBatch)
	case *file.Int32ColumnChunkReader:
		l.i32, l.i32v = r, make([]int32, pqLevelBatch)
	case *file.BooleanColumnChunkReader:
		l.bo, l.bov = r, make([]bool, pqLevelBatch)
	default:
		return nil, fmt.Errorf("column %s: unexpected physical type %s", path, cr.Type())
	}
	return l, nil
}

// fill reads the next levels (from one page; byte arrays alias the page until the next fill).
func (l *pqLeaf) fill() error {
	for stalls := 0; ; stalls++ {
		if stalls > 2 {
			return fmt.Errorf("column %s: corrupt page (no values decoded)", l.path)
		}
		var (
			total int64
			nv    int
			err   error
		)
		switch {
		case l.ba != nil:
			total, nv, err = l.ba.ReadBatchInPage(pqLevelBatch, l.bav, l.defs, l.reps)
		case l.i64 != nil:
			total, nv, err = l.i64.ReadBatchInPage(pqLevelBatch, l.i64v, l.defs, l.reps)
		case l.i32 != nil:
			total, nv, err = l.i32.ReadBatchInPage(pqLevelBatch, l.i32v, l.defs, l.reps)
		default:
			total, nv, err = l.bo.ReadBatchInPage(pqLevelBatch, l.bov, l.defs, l.reps)
		}
		if err != nil {
			return fmt.Errorf("column %s: %w", l.path, err)
		}
		if total < 0 || total > pqLevelBatch || nv < 0 || nv > int(total) {
			return fmt.Errorf("column %s: corrupt page", l.path)
		}
		if total > 0 {
			l.n, l.pos, l.nv, l.vpos = int(total), 0, nv, 0
			return nil
		}
		if err := l.rdr.Err(); err != nil {
			return fmt.Errorf("column %s: %w", l.path, err)
		}
		if !l.rdr.HasNext() {
			if err := l.rdr.Err(); err != nil {
				return fmt.Errorf("column %s: %w", l.path, err)
			}
			return io.EOF
		}
	}
}

// next moves to the next level.
func (l *pqLeaf) next() error {
	if l.pos >= l.n {
		if err := l.fill(); err != nil {
			if err == io.EOF {
				return fmt.Errorf("column %s: fewer values than rows", l.path)
			}
			return err
		}
	}
	l.def, l.rep = l.maxDef, 0
	if l.maxDef > 0 {
		l.def = l.defs[l.pos]
	}
	if l.maxRep > 0 {
		l.rep = l.reps[l.pos]
	}
	l.pos++
	l.vi = -1
	if l.def == l.maxDef {
		if l.vpos >= l.nv {
			return fmt.Errorf("column %s: fewer values than levels", l.path)
		}
		l.vi = l.vpos
		l.vpos++
	}
	return nil
}

// advance moves a field's leaf to the current row (the presence leaf is already there).
func (l *pqLeaf) advance() error {
	if l.presence {
		return nil
	}
	return l.next()
}

// nextInRow reports whether the next level continues the current row (repeated leaves).
func (l *pqLeaf) nextInRow() (bool, error) {
	if l.pos >= l.n {
		if err := l.fill(); err != nil {
			if err == io.EOF {
				return false, nil
			}
			return false, err
		}
	}
	return l.reps != nil && l.reps[l.pos] != 0, nil
}

// skipNullRows skips k rows in which the action (definition level below actionDef) is absent:
// one level each, without values.
func (l *pqLeaf) skipNullRows(k int, actionDef int16) error {
	for k > 0 {
		if l.pos >= l.n {
			if err := l.fill(); err != nil {
				if err == io.EOF {
					return fmt.Errorf("column %s: fewer values than rows", l.path)
				}
				return err
			}
		}
		m := min(k, l.n-l.pos)
		if l.maxDef > 0 {
			for _, v := range l.defs[l.pos : l.pos+m] {
				if v >= actionDef {
					return fmt.Errorf("column %s: value in a row without its action", l.path)
				}
			}
		} else if actionDef > 0 {
			return fmt.Errorf("column %s: value in a row without its action", l.path)
		}
		l.pos += m
		k -= m
	}
	return nil
}

func (l *pqLeaf) has() bool { return l.vi >= 0 }

// bytes is the current value; it aliases the page and is valid until the next level is read.
func (l *pqLeaf) bytes() []byte {
	if l.vi < 0 || l.ba == nil {
		return nil
	}
	return l.bav[l.vi]
}

func (l *pqLeaf) int() int64 {
	switch {
	case l.vi < 0:
		return 0
	case l.i64 != nil:
		return l.i64v[l.vi]
	case l.i32 != nil:
		return int64(l.i32v[l.vi])
	}
	return 0
}

func (l *pqLeaf) bool() bool { return l.vi >= 0 && l.bo != nil && l.bov[l.vi] }

// ---- bound fields --------------------------------------------------------------------------------

type pqField struct {
	plan   *pqFieldPlan
	leaf   *pqLeaf
	leaf2  *pqLeaf
	sub    []*pqField
	leaves []*pqLeaf // every leaf of the field, for skipping
}

func (d *pqDecoder) bindField(rgr *file.RowGroupReader, fp *pqFieldPlan) (*pqField, error) {
	if fp == nil {
		return nil, nil
	}
	f := &pqField{plan: fp}
	var err error
	if fp.leaf >= 0 {
		if f.leaf, err = d.openLeaf(rgr, fp.leaf, fp.path); err != nil {
			return nil, err
		}
		f.leaves = append(f.leaves, f.leaf)
	}
	if fp.leaf2 >= 0 {
		if f.leaf2, err = d.openLeaf(rgr, fp.leaf2, fp.path+".value"); err != nil {
			return nil, err
		}
		f.leaves = append(f.leaves, f.leaf2)
	}
	for _, sp := range fp.sub {
		sf, err := d.bindField(rgr, sp)
		if err != nil {
			return nil, err
		}
		f.sub = append(f.sub, sf)
		if sf != nil {
			f.leaves = append(f.leaves, sf.leaves...)
		}
	}
	return f, nil
}

// The field readers below record the first error of a row in d.ferr and then read nothing.

// prim reads a primitive field of the current row; false when null, absent or after an error.
func (d *pqDecoder) prim(f *pqField) bool {
	if f == nil || d.ferr != nil {
		return false
	}
	if err := f.leaf.advance(); err != nil {
		d.ferr = err
		return false
	}
	return f.leaf.has()
}

func (d *pqDecoder) str(f *pqField) string {
	if !d.prim(f) {
		return ""
	}
	return d.arena.str(f.leaf.bytes())
}

// ownStr is for the values of rare actions, which should not pin an arena chunk.
func (d *pqDecoder) ownStr(f *pqField) string {
	if !d.prim(f) {
		return ""
	}
	return string(f.leaf.bytes())
}

func (d *pqDecoder) optStr(f *pqField) *string {
	if !d.prim(f) {
		return nil
	}
	s := string(f.leaf.bytes())
	return &s
}

func (d *pqDecoder) long(f *pqField) int64 {
	if !d.prim(f) {
		return 0
	}
	return f.leaf.int()
}

func (d *pqDecoder) boolean(f *pqField) bool {
	if !d.prim(f) {
		return false
	}
	return f.leaf.bool()
}

func (d *pqDecoder) optBool(f *pqField) *bool {
	if !d.prim(f) {
		return nil
	}
	v := f.leaf.bool()
	return &v
}

// optLong allocates from a slab (for adds and removes).
func (d *pqDecoder) optLong(f *pqField) *int64 {
	if !d.prim(f) {
		return nil
	}
	p := d.ints.alloc()
	*p = f.leaf.int()
	return p
}

func (d *pqDecoder) ownOptLong(f *pqField) *int64 {
	if !d.prim(f) {
		return nil
	}
	v := f.leaf.int()
	return &v
}

// entries reads a map or list field of the current row, calling fn for each entry (v is nil for
// lists; vnull tells a null map value). It returns whether the field is non-null.
func (f *pqField) entries(fn func(k, v []byte, knull, vnull bool)) (bool, error) {
	if f == nil {
		return false, nil
	}
	k, v := f.leaf, f.leaf2
	first := true
	for {
		if !first {
			more, err := k.nextInRow()
			if err != nil || !more {
				return true, err
			}
		}
		if err := k.next(); err != nil {
			return false, err
		}
		if v != nil {
			if err := v.next(); err != nil {
				return false, err
			}
			if v.rep != k.rep || (v.def < f.plan.emptyDef) != (k.def < f.plan.emptyDef) {
				return false, fmt.Errorf("column %s: key and value columns disagree", f.plan.path)
			}
		}
		if first {
			first = false
			if k.rep != 0 {
				return false, fmt.Errorf("column %s: row does not start at repetition level 0", f.plan.path)
			}
			if k.def < f.plan.nullDef {
				return false, nil
			}
			if k.def < f.plan.emptyDef {
				return true, nil
			}
		} else if k.def < f.plan.emptyDef {
			return false, fmt.Errorf("column %s: empty entry inside a row", f.plan.path)
		}
		var vb []byte
		vnull := true
		if v != nil && v.has() {
			vb, vnull = v.bytes(), false
		}
		fn(k.bytes(), vb, !k.has(), vnull)
	}
}

// strMap reads a map<string,string> with interned keys and values; nil when null.
func (d *pqDecoder) strMap(f *pqField, in *pqInterner) map[string]string {
	if f == nil || d.ferr != nil {
		return nil
	}
	var m map[string]string
	ok, err := f.entries(func(k, v []byte, knull, vnull bool) {
		if m == nil {
			m = make(map[string]string, 1)
		}
		if !knull {
			m[in.str(k)] = in.str(v)
		}
	})
	if err != nil || !ok {
		d.ferr = err
		return nil
	}
	if m == nil {
		m = map[string]string{}
	}
	return m
}

// strList reads an array<string>; nil when null, non-nil otherwise.
func (d *pqDecoder) strList(f *pqField) []string {
	if f == nil || d.ferr != nil {
		return nil
	}
	out := []string{}
	ok, err := f.entries(func(k, _ []byte, knull, _ bool) {
		if !knull {
			out = append(out, string(k))
		}
	})
	if err != nil || !ok {
		d.ferr = err
		return nil
	}
	return out
}

const (
	pqPVCacheMaxEntries = 1 << 16
	pqPVCacheMaxKey     = 1024
)

// partitionValues reads a partitionValues map, null values as nil pointers; adds with equal
// values get the same map. A null map reads as nil, or as an empty map when emptyIfNull.
func (d *pqDecoder) partitionValues(f *pqField, emptyIfNull bool) map[string]*string {
	if f == nil || d.ferr != nil {
		if emptyIfNull {
			return d.emptyPV
		}
		return nil
	}
	key := d.pvKey[:0]
	n := 0
	ok, err := f.entries(func(k, v []byte, knull, vnull bool) {
		if knull {
			return
		}
		n++
		key = binary.AppendUvarint(key, uint64(len(k)))
		key = append(key, k...)
		if vnull {
			key = append(key, 0)
		} else {
			key = binary.AppendUvarint(append(key, 1), uint64(len(v)))
			key = append(key, v...)
		}
	})
	d.pvKey = key
	if err != nil {
		d.ferr = err
		return nil
	}
	if !ok && !emptyIfNull {
		return nil
	}
	if n == 0 {
		return d.emptyPV
	}
	if m, ok := d.pvCache[string(key)]; ok {
		return m
	}
	m := make(map[string]*string, n)
	for b := key; len(b) > 0; {
		kl, w := binary.Uvarint(b)
		k := d.intern.str(b[w : w+int(kl)])
		b = b[w+int(kl):]
		if b[0] == 0 {
			m[k] = nil
			b = b[1:]
			continue
		}
		vl, w := binary.Uvarint(b[1:])
		m[k] = d.intern.ptr(b[1+w : 1+w+int(vl)])
		b = b[1+w+int(vl):]
	}
	if len(key) <= pqPVCacheMaxKey {
		if len(d.pvCache) >= pqPVCacheMaxEntries {
			clear(d.pvCache)
		}
		d.pvCache[string(key)] = m
	}
	return m
}

// deletionVector reads a deletionVector struct; nil when null.
func (d *pqDecoder) deletionVector(f *pqField) *delta.DeletionVector {
	if f == nil || d.ferr != nil {
		return nil
	}
	present := false
	for _, sf := range f.sub {
		if sf != nil {
			if err := sf.leaf.advance(); err != nil {
				d.ferr = err
				return nil
			}
			present = present || sf.leaf.def >= f.plan.nullDef
		}
	}
	if !present {
		return nil
	}
	dv := d.dvs.alloc()
	if sf := f.sub[0]; sf != nil && sf.leaf.has() {
		dv.StorageType = d.intern.str(sf.leaf.bytes())
	}
	if sf := f.sub[1]; sf != nil && sf.leaf.has() {
		dv.PathOrInlineDv = d.arena.str(sf.leaf.bytes())
	}
	if sf := f.sub[2]; sf != nil && sf.leaf.has() {
		o := int32(sf.leaf.int())
		dv.Offset = &o
	}
	if sf := f.sub[3]; sf != nil {
		dv.SizeInBytes = int32(sf.leaf.int())
	}
	if sf := f.sub[4]; sf != nil {
		dv.Cardinality = sf.leaf.int()
	}
	return dv
}

// ---- actions -------------------------------------------------------------------------------------

// pqAction decodes one action column of a row group, row by row.
type pqAction struct {
	plan     *pqActionPlan
	fields   []*pqField // as plan.fields
	presence *pqLeaf
	others   []*pqLeaf // every leaf but the presence leaf
	pending  int       // rows without the action whose levels the other leaves have not skipped
	add      *pqAddState
	decode   func(d *pqDecoder, a *pqAction) error
}

type pqAddState struct {
	statsField *pqFieldPlan // add.stats, read by a pqStatsPrefetch
	needParsed bool
}

func (d *pqDecoder) bindAction(rgr *file.RowGroupReader, p *pqActionPlan) (*pqAction, error) {
	a := &pqAction{plan: p}
	for i, fp := range p.fields {
		if p.name == "add" && i == 5 && fp != nil {
			// add.stats is decoded ahead, in its own goroutine (see pqStatsPrefetch).
			a.add = &pqAddState{statsField: fp}
			a.fields = append(a.fields, nil)
			continue
		}
		f, err := d.bindField(rgr, fp)
		if err != nil {
			return nil, err
		}
		a.fields = append(a.fields, f)
	}
	a.presence = a.fields[p.presence].leaf
	a.presence.presence = true
	for _, f := range a.fields {
		if f == nil {
			continue
		}
		for _, l := range f.leaves {
			if l != a.presence {
				a.others = append(a.others, l)
			}
		}
	}
	switch p.name {
	case "add":
		if a.add == nil {
			a.add = &pqAddState{}
		}
		a.add.needParsed = p.hasParsed &&
			(d.cfg.forceParsed || !pqAllAddsHaveStats(d.pf.MetaData().RowGroup(d.rowGroup), p.pathLeaf, p.statsLeaf))
		a.decode = (*pqDecoder).decodeAdd
	case "remove":
		a.decode = (*pqDecoder).decodeRemove
	case "metaData":
		a.decode = (*pqDecoder).decodeMetadata
	case "protocol":
		a.decode = (*pqDecoder).decodeProtocol
	case "txn":
		a.decode = (*pqDecoder).decodeTxn
	case "domainMetadata":
		a.decode = (*pqDecoder).decodeDomainMetadata
	case "sidecar":
		a.decode = (*pqDecoder).decodeSidecar
	case "checkpointMetadata":
		a.decode = (*pqDecoder).decodeCheckpointMetadata
	}
	return a, nil
}

func (a *pqAction) row(d *pqDecoder) error {
	p := a.presence
	if err := p.next(); err != nil {
		return err
	}
	if p.rep != 0 {
		return fmt.Errorf("column %s: row does not start at repetition level 0", p.path)
	}
	if p.def < a.plan.def {
		a.pending++
		return nil
	}
	if a.pending > 0 {
		for _, l := range a.others {
			if err := l.skipNullRows(a.pending, a.plan.def); err != nil {
				return err
			}
		}
		a.pending = 0
	}
	return a.decode(d, a)
}

func (d *pqDecoder) decodeAdd(a *pqAction) error {
	f := a.fields
	if !a.presence.has() {
		return d.rowErr("add.path is null")
	}
	var ad *delta.Add
	if d.cfg.sink != nil {
		// The sink copies what it keeps.
		d.scratchAdd = delta.Add{}
		ad = &d.scratchAdd
	} else {
		ad = d.adds.alloc()
	}
	ad.Path = d.arena.str(a.presence.bytes())
	ad.PartitionValues = d.partitionValues(f[1], true)
	ad.Size = d.long(f[2])
	ad.ModificationTime = d.long(f[3])
	ad.DataChange = d.boolean(f[4])
	ad.Tags = d.strMap(f[6], d.intern)
	ad.DeletionVector = d.deletionVector(f[7])
	ad.BaseRowID = d.optLong(f[8])
	ad.DefaultRowCommitVersion = d.optLong(f[9])
	if d.prim(f[10]) {
		s := d.strs.alloc()
		*s = d.intern.str(f[10].leaf.bytes())
		ad.ClusteringProvider = s
	}
	if err := d.takeErr(); err != nil {
		return err
	}
	var ref StatsRef
	if d.stats != nil {
		s, r, err := d.stats.get(d.row)
		if err != nil {
			return err
		}
		ad.Stats, ref = s, r
	}
	if d.cfg.forceParsed && a.add.needParsed {
		ad.Stats, ref = "", StatsRef{}
	}
	if ad.Stats == "" && ref.Len == 0 && a.add.needParsed && d.parsed != nil {
		s, err := d.parsed.get(d.row)
		if err != nil {
			return err
		}
		ad.Stats = s
	}
	if d.cfg.sink != nil {
		d.inYield = true
		err := d.cfg.sink.Add(ad, ref)
		d.inYield = false
		return err
	}
	return d.emit(delta.Action{Add: ad})
}

func (d *pqDecoder) takeErr() error {
	err := d.ferr
	d.ferr = nil
	return err
}

func (d *pqDecoder) decodeRemove(a *pqAction) error {
	f := a.fields
	if !a.presence.has() {
		return d.rowErr("remove.path is null")
	}
	r := d.rems.alloc()
	r.Path = d.arena.str(a.presence.bytes())
	r.DeletionTimestamp = d.optLong(f[1])
	r.DataChange = d.boolean(f[2])
	r.ExtendedFileMetadata = d.optBool(f[3])
	r.PartitionValues = d.partitionValues(f[4], false)
	r.Size = d.optLong(f[5])
	r.Stats = d.str(f[6])
	r.Tags = d.strMap(f[7], d.intern)
	r.DeletionVector = d.deletionVector(f[8])
	r.BaseRowID = d.optLong(f[9])
	r.DefaultRowCommitVersion = d.optLong(f[10])
	if err := d.takeErr(); err != nil {
		return err
	}
	return d.emit(delta.Action{Remove: r})
}

func (d *pqDecoder) decodeMetadata(a *pqAction) error {
	f := a.fields
	in := newPQInterner() // metadata must not pin the decoder's intern table
	m := &delta.Metadata{}
	m.ID = d.ownStr(f[0])
	m.Name = d.optStr(f[1])
	m.Description = d.optStr(f[2])
	if ff := f[3]; ff != nil {
		m.Format.Provider = d.ownStr(ff.sub[0])
		m.Format.Options = d.strMap(ff.sub[1], in)
	}
	m.SchemaString = d.ownStr(f[4])
	m.PartitionColumns = d.strList(f[5])
	m.CreatedTime = d.ownOptLong(f[6])
	m.Configuration = d.strMap(f[7], in)
	if err := d.takeErr(); err != nil {
		return err
	}
	if m.Format.Options == nil {
		m.Format.Options = map[string]string{}
	}
	if m.Configuration == nil {
		m.Configuration = map[string]string{}
	}
	if m.PartitionColumns == nil {
		m.PartitionColumns = []string{}
	}
	return d.emit(delta.Action{Metadata: m})
}

func (d *pqDecoder) decodeProtocol(a *pqAction) error {
	f := a.fields
	p := &delta.Protocol{
		MinReaderVersion: int(d.long(f[0])),
		MinWriterVersion: int(d.long(f[1])),
		ReaderFeatures:   d.strList(f[2]),
		WriterFeatures:   d.strList(f[3]),
	}
	if err := d.takeErr(); err != nil {
		return err
	}
	return d.emit(delta.Action{Protocol: p})
}

func (d *pqDecoder) decodeTxn(a *pqAction) error {
	f := a.fields
	app := d.optStr(f[0])
	t := &delta.Txn{Version: d.long(f[1]), LastUpdated: d.ownOptLong(f[2])}
	if err := d.takeErr(); err != nil {
		return err
	}
	if app == nil {
		return d.rowErr("txn.appId is null")
	}
	t.AppID = *app
	return d.emit(delta.Action{Txn: t})
}

func (d *pqDecoder) decodeDomainMetadata(a *pqAction) error {
	f := a.fields
	dom := d.optStr(f[0])
	dm := &delta.DomainMetadata{Configuration: d.ownStr(f[1]), Removed: d.boolean(f[2])}
	if err := d.takeErr(); err != nil {
		return err
	}
	if dom == nil {
		return d.rowErr("domainMetadata.domain is null")
	}
	dm.Domain = *dom
	return d.emit(delta.Action{DomainMetadata: dm})
}

func (d *pqDecoder) decodeSidecar(a *pqAction) error {
	f := a.fields
	p := d.optStr(f[0])
	s := &delta.Sidecar{SizeInBytes: d.long(f[1]), ModificationTime: d.long(f[2]), Tags: d.strMap(f[3], newPQInterner())}
	if err := d.takeErr(); err != nil {
		return err
	}
	if p == nil {
		return d.rowErr("sidecar.path is null")
	}
	s.Path = *p
	return d.emit(delta.Action{Sidecar: s})
}

func (d *pqDecoder) decodeCheckpointMetadata(a *pqAction) error {
	f := a.fields
	c := &delta.CheckpointMetadata{Version: d.long(f[0]), Tags: d.strMap(f[1], newPQInterner())}
	if err := d.takeErr(); err != nil {
		return err
	}
	return d.emit(delta.Action{CheckpointMetadata: c})
}

// ---- add.stats, read ahead -------------------------------------------------------------------------

// pqStatsPrefetch decodes the add.stats column of a row group in its own goroutine, ahead of the
// rows the decoder is at: decompressing and copying the JSON stats is most of a checkpoint's work,
// and this puts it on a second core.
type pqStatsPrefetch struct {
	ch     chan pqStatsChunk
	quit   chan struct{}
	done   chan struct{}
	cur    []string
	refs   []StatsRef // instead of cur when the stats go to a StatsWriter
	base   int        // row of cur[0]
	err    error
	closed bool
}

type pqStatsChunk struct {
	vals []string // one per row, "" when null
	refs []StatsRef
	err  error
}

const (
	pqStatsChunkRows = 4096
	pqStatsAhead     = 8 // chunks
)

// startStatsPrefetch reads the leaf (opened by the caller's goroutine) in a new goroutine.
// The stats go to sw when it is not nil, which the goroutine closes when it ends.
func startStatsPrefetch(l *pqLeaf, nrows int64, sw StatsWriter) *pqStatsPrefetch {
	p := &pqStatsPrefetch{ch: make(chan pqStatsChunk, pqStatsAhead), quit: make(chan struct{}), done: make(chan struct{})}
	go p.run(l, nrows, sw)
	return p
}

func (p *pqStatsPrefetch) run(l *pqLeaf, nrows int64, sw StatsWriter) {
	defer close(p.done)
	defer close(p.ch)
	send := func(c pqStatsChunk) bool {
		select {
		case p.ch <- c:
			return true
		case <-p.quit:
			return false
		}
	}
	defer func() {
		if r := recover(); r != nil {
			send(pqStatsChunk{err: fmt.Errorf("malformed checkpoint: column %s: %v", l.path, r)})
		}
	}()
	var arena pqArena
	if sw != nil {
		defer sw.Close()
	}
	for left := nrows; left > 0; {
		n := int(min(left, pqStatsChunkRows))
		var vals []string
		var refs []StatsRef
		if sw != nil {
			refs = make([]StatsRef, n)
		} else {
			vals = make([]string, n)
		}
		for i := range n {
			if err := l.next(); err != nil {
				send(pqStatsChunk{err: err})
				return
			}
			if l.rep != 0 {
				send(pqStatsChunk{err: fmt.Errorf("column %s: row does not start at repetition level 0", l.path)})
				return
			}
			switch {
			case !l.has():
			case sw != nil:
				if b := l.bytes(); len(b) > 0 {
					refs[i] = sw.Put(b)
				}
			default:
				vals[i] = arena.str(l.bytes())
			}
		}
		if !send(pqStatsChunk{vals: vals, refs: refs}) {
			return
		}
		left -= int64(n)
	}
}

// get is the stats of the row, as a string or a place in the StatsWriter; rows are asked for in
// increasing order.
func (p *pqStatsPrefetch) get(row int) (string, StatsRef, error) {
	for row >= p.base+len(p.cur)+len(p.refs) {
		if p.err != nil {
			return "", StatsRef{}, p.err
		}
		c, ok := <-p.ch
		if !ok {
			p.err = errors.New("add.stats: fewer values than rows")
			return "", StatsRef{}, p.err
		}
		if c.err != nil {
			p.err = c.err
			return "", StatsRef{}, p.err
		}
		p.base += len(p.cur) + len(p.refs)
		p.cur, p.refs = c.vals, c.refs
	}
	switch {
	case row < p.base:
		return "", StatsRef{}, nil
	case p.refs != nil:
		return "", p.refs[row-p.base], nil
	}
	return p.cur[row-p.base], StatsRef{}, nil
}

// stop ends the goroutine and waits for it: it reads the file, which the caller may close once
// Decode returns.
func (p *pqStatsPrefetch) stop() {
	if !p.closed {
		p.closed = true
		close(p.quit)
	}
	<-p.done
}

// ---- stats_parsed --------------------------------------------------------------------------------

// pqParsedStats reads add.stats_parsed of one row group through Arrow, batch by batch, in step
// with the rows the decoder is at.
type pqParsedStats struct {
	rr   pqarrow.RecordReader
	json *pqStatsJSON
	base int // row of the current batch's first row
	n    int
}

const pqParsedBatchRows = 1 << 14

func (d *pqDecoder) openParsedStats(rg int) (*pqParsedStats, error) {
	if d.fr == nil {
		fr, err := pqarrow.NewFileReader(d.pf, pqarrow.ArrowReadProperties{BatchSize: pqParsedBatchRows}, memory.DefaultAllocator)
		if err != nil {
			return nil, fmt.Errorf("add.stats_parsed: %w", err)
		}
		d.fr = fr
	}
	sch := d.pf.MetaData().Schema
	var leaves []int
	for i := 0; i < sch.NumColumns(); i++ {
		p := sch.Column(i).ColumnPath()
		if len(p) > 2 && p[0] == "add" && p[1] == "stats_parsed" {
			leaves = append(leaves, i)
		}
	}
	if len(leaves) == 0 {
		return nil, nil
	}
	rr, err := d.fr.GetRecordReader(context.Background(), leaves, []int{rg})
	if err != nil {
		return nil, fmt.Errorf("add.stats_parsed: %w", err)
	}
	return &pqParsedStats{rr: rr}, nil
}

func (p *pqParsedStats) release() {
	if p.rr != nil {
		p.rr.Release()
	}
}

// get is the JSON stats of the row ("" when stats_parsed is null there).
func (p *pqParsedStats) get(row int) (string, error) {
	for row >= p.base+p.n {
		if !p.rr.Next() {
			if err := p.rr.Err(); err != nil {
				return "", fmt.Errorf("add.stats_parsed: %w", err)
			}
			return "", errors.New("add.stats_parsed: fewer rows than the row group")
		}
		rec := p.rr.RecordBatch()
		p.base += p.n
		p.n = int(rec.NumRows())
		p.json = nil
		if idx := rec.Schema().FieldIndices("add"); len(idx) > 0 {
			if add, ok := rec.Column(idx[0]).(*array.Struct); ok {
				typ := add.DataType().(*arrow.StructType)
				if i, ok := typ.FieldIdx("stats_parsed"); ok {
					if sp, ok := add.Field(i).(*array.Struct); ok {
						p.json = newPQStatsJSON(sp)
					}
				}
			}
		}
	}
	if p.json == nil || row < p.base {
		return "", nil
	}
	return p.json.get(row - p.base), nil
}

// ---- allocation helpers ----------------------------------------------------------------------

// pqArena holds the bytes of decoded strings: each string is copied once, into a chunk that is
// never written again where a string points, and the strings share the chunks.
type pqArena struct{ buf []byte }

const pqArenaChunk = 1 << 20

func (a *pqArena) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > cap(a.buf)-len(a.buf) {
		if len(b) > pqArenaChunk/8 {
			return string(b)
		}
		a.buf = make([]byte, 0, pqArenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[start], len(b))
}

// pqSlab hands out pointers into chunks of T, so that a million adds cost a thousand allocations.
type pqSlab[T any] struct{ buf []T }

func (s *pqSlab[T]) alloc() *T {
	if len(s.buf) == 0 {
		s.buf = make([]T, 1024)
	}
	p := &s.buf[0]
	s.buf = s.buf[1:]
	return p
}

const (
	pqInternMaxEntries = 1 << 16
	pqInternMaxLen     = 256
)

// pqInterner dedups the strings of partition values and tags: a table's files share a few
// partition keys and, mostly, few partition values.
type pqInterner struct {
	strs map[string]string
	ptrs map[string]*string
}

func newPQInterner() *pqInterner {
	return &pqInterner{strs: map[string]string{}, ptrs: map[string]*string{}}
}

func (in *pqInterner) str(b []byte) string {
	if s, ok := in.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(b) <= pqInternMaxLen {
		if len(in.strs) >= pqInternMaxEntries {
			clear(in.strs)
		}
		in.strs[s] = s
	}
	return s
}

func (in *pqInterner) ptr(b []byte) *string {
	if p, ok := in.ptrs[string(b)]; ok {
		return p
	}
	s := in.str(b)
	p := &s
	if len(b) <= pqInternMaxLen {
		if len(in.ptrs) >= pqInternMaxEntries {
			clear(in.ptrs)
		}
		in.ptrs[s] = p
	}
	return p
}
