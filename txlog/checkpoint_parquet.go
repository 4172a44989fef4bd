package txlog

// Parquet checkpoints: decoding classic, multi-part, V2 and sidecar checkpoint files into Actions,
// and encoding Actions as a classic checkpoint in the protocol's checkpoint schema.
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
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// ---------------------------------------------------------------------------------------------
// Decoding

// CheckpointReadOption tunes DecodeCheckpoint.
type CheckpointReadOption func(*pqReadConfig)

type pqReadConfig struct {
	skipStats   bool
	only        map[string]bool // top-level action columns to read; nil reads all
	forceParsed bool            // tests: render stats from stats_parsed even when stats is set
}

// WithoutCheckpointStats makes DecodeCheckpoint leave Add.Stats empty and skip reading the stats
// columns (stats and stats_parsed), which are most of a checkpoint's bytes.
func WithoutCheckpointStats() CheckpointReadOption {
	return func(c *pqReadConfig) { c.skipStats = true }
}

// WithCheckpointActions restricts DecodeCheckpoint to the named top-level action columns
// ("add", "remove", "metaData", "protocol", "txn", "domainMetadata", "sidecar",
// "checkpointMetadata"); the other columns are not read at all.
func WithCheckpointActions(names ...string) CheckpointReadOption {
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

// DecodeCheckpoint decodes one Parquet checkpoint file of size bytes read through r: a classic
// checkpoint, one part of a multi-part checkpoint, a V2 (UUID-named) Parquet checkpoint, or a
// V2 sidecar file. It calls yield once per action, in file order; an error from yield stops
// decoding and is returned as is. r is read with a few large ReadAt calls (the footer, then
// each needed column chunk of one row group at a time), some of them concurrent (as io.ReaderAt
// allows); nothing reads r after DecodeCheckpoint returns.
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
func DecodeCheckpoint(r io.ReaderAt, size int64, yield func(Action) error, opts ...CheckpointReadOption) (err error) {
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
	yield   func(Action) error
	inYield bool

	intern *pqInterner
	arena  pqArena
	adds   pqSlab[Add]
	rems   pqSlab[Remove]
	dvs    pqSlab[DeletionVector]
	ints   pqSlab[int64]
	strs   pqSlab[string]

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
			d.stats = startStatsPrefetch(l, nrows)
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

func (d *pqDecoder) emit(a Action) error {
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

// pqSpecs are the fields DecodeCheckpoint reads. The first field that is in the file and not
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
func (d *pqDecoder) deletionVector(f *pqField) *DeletionVector {
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
	ad := d.adds.alloc()
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
	if d.stats != nil {
		s, err := d.stats.get(d.row)
		if err != nil {
			return err
		}
		ad.Stats = s
	}
	if d.cfg.forceParsed && a.add.needParsed {
		ad.Stats = ""
	}
	if ad.Stats == "" && a.add.needParsed && d.parsed != nil {
		s, err := d.parsed.get(d.row)
		if err != nil {
			return err
		}
		ad.Stats = s
	}
	return d.emit(Action{Add: ad})
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
	return d.emit(Action{Remove: r})
}

func (d *pqDecoder) decodeMetadata(a *pqAction) error {
	f := a.fields
	in := newPQInterner() // metadata must not pin the decoder's intern table
	m := &Metadata{}
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
	return d.emit(Action{Metadata: m})
}

func (d *pqDecoder) decodeProtocol(a *pqAction) error {
	f := a.fields
	p := &Protocol{
		MinReaderVersion: int(d.long(f[0])),
		MinWriterVersion: int(d.long(f[1])),
		ReaderFeatures:   d.strList(f[2]),
		WriterFeatures:   d.strList(f[3]),
	}
	if err := d.takeErr(); err != nil {
		return err
	}
	return d.emit(Action{Protocol: p})
}

func (d *pqDecoder) decodeTxn(a *pqAction) error {
	f := a.fields
	app := d.optStr(f[0])
	t := &Txn{Version: d.long(f[1]), LastUpdated: d.ownOptLong(f[2])}
	if err := d.takeErr(); err != nil {
		return err
	}
	if app == nil {
		return d.rowErr("txn.appId is null")
	}
	t.AppID = *app
	return d.emit(Action{Txn: t})
}

func (d *pqDecoder) decodeDomainMetadata(a *pqAction) error {
	f := a.fields
	dom := d.optStr(f[0])
	dm := &DomainMetadata{Configuration: d.ownStr(f[1]), Removed: d.boolean(f[2])}
	if err := d.takeErr(); err != nil {
		return err
	}
	if dom == nil {
		return d.rowErr("domainMetadata.domain is null")
	}
	dm.Domain = *dom
	return d.emit(Action{DomainMetadata: dm})
}

func (d *pqDecoder) decodeSidecar(a *pqAction) error {
	f := a.fields
	p := d.optStr(f[0])
	s := &Sidecar{SizeInBytes: d.long(f[1]), ModificationTime: d.long(f[2]), Tags: d.strMap(f[3], newPQInterner())}
	if err := d.takeErr(); err != nil {
		return err
	}
	if p == nil {
		return d.rowErr("sidecar.path is null")
	}
	s.Path = *p
	return d.emit(Action{Sidecar: s})
}

func (d *pqDecoder) decodeCheckpointMetadata(a *pqAction) error {
	f := a.fields
	c := &CheckpointMetadata{Version: d.long(f[0]), Tags: d.strMap(f[1], newPQInterner())}
	if err := d.takeErr(); err != nil {
		return err
	}
	return d.emit(Action{CheckpointMetadata: c})
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
	base   int // row of cur[0]
	err    error
	closed bool
}

type pqStatsChunk struct {
	vals []string // one per row, "" when null
	err  error
}

const (
	pqStatsChunkRows = 4096
	pqStatsAhead     = 8 // chunks
)

// startStatsPrefetch reads the leaf (opened by the caller's goroutine) in a new goroutine.
func startStatsPrefetch(l *pqLeaf, nrows int64) *pqStatsPrefetch {
	p := &pqStatsPrefetch{ch: make(chan pqStatsChunk, pqStatsAhead), quit: make(chan struct{}), done: make(chan struct{})}
	go p.run(l, nrows)
	return p
}

func (p *pqStatsPrefetch) run(l *pqLeaf, nrows int64) {
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
	for left := nrows; left > 0; {
		n := int(min(left, pqStatsChunkRows))
		vals := make([]string, n)
		for i := range vals {
			if err := l.next(); err != nil {
				send(pqStatsChunk{err: err})
				return
			}
			if l.rep != 0 {
				send(pqStatsChunk{err: fmt.Errorf("column %s: row does not start at repetition level 0", l.path)})
				return
			}
			if l.has() {
				vals[i] = arena.str(l.bytes())
			}
		}
		if !send(pqStatsChunk{vals: vals}) {
			return
		}
		left -= int64(n)
	}
}

// get is the stats of the row; rows are asked for in increasing order.
func (p *pqStatsPrefetch) get(row int) (string, error) {
	for row >= p.base+len(p.cur) {
		if p.err != nil {
			return "", p.err
		}
		c, ok := <-p.ch
		if !ok {
			p.err = errors.New("add.stats: fewer values than rows")
			return "", p.err
		}
		if c.err != nil {
			p.err = c.err
			return "", p.err
		}
		p.base += len(p.cur)
		p.cur = c.vals
	}
	if row < p.base {
		return "", nil
	}
	return p.cur[row-p.base], nil
}

// stop ends the goroutine and waits for it: it reads the file, which the caller may close once
// DecodeCheckpoint returns.
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

// ---- stats_parsed to JSON --------------------------------------------------------------------

// pqStatsJSON renders the stats_parsed struct of a batch as the JSON stats string, in the order
// Spark writes it: numRecords, minValues, maxValues, nullCount, tightBounds. Null values are left
// out, as are values of types JSON stats do not hold (binary, arrays, maps, variants).
type pqStatsJSON struct {
	arr  *array.Struct
	obj  pqJSONObj
	buf  []byte
	offs []int32 // offs[i]..offs[i+1] is row i's JSON in buf; -1 for null
	s    string
	done bool
}

type pqJSONWriter func(b []byte, i int) []byte

type pqJSONField struct {
	key   []byte // "name":
	arr   arrow.Array
	write pqJSONWriter
}

type pqJSONObj struct{ fields []pqJSONField }

func (o *pqJSONObj) write(b []byte, i int) []byte {
	b = append(b, '{')
	first := true
	for k := range o.fields {
		f := &o.fields[k]
		if f.arr.IsNull(i) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, f.key...)
		b = f.write(b, i)
	}
	return append(b, '}')
}

func newPQStatsJSON(st *array.Struct) *pqStatsJSON {
	typ := st.DataType().(*arrow.StructType)
	j := &pqStatsJSON{arr: st}
	for _, name := range []string{"numRecords", "minValues", "maxValues", "nullCount", "tightBounds"} {
		idx, ok := typ.FieldIdx(name)
		if !ok {
			continue
		}
		child := st.Field(idx)
		w := pqJSONCompile(child)
		if w == nil {
			continue
		}
		j.obj.fields = append(j.obj.fields, pqJSONField{key: pqJSONKey(name), arr: child, write: w})
	}
	return j
}

// get renders every row of the batch on first use and returns row i's JSON ("" when null).
func (j *pqStatsJSON) get(i int) string {
	if !j.done {
		n := j.arr.Len()
		j.offs = make([]int32, n+1)
		for r := 0; r < n; r++ {
			j.offs[r] = int32(len(j.buf))
			if j.arr.IsValid(r) {
				j.buf = j.obj.write(j.buf, r)
			}
		}
		j.offs[n] = int32(len(j.buf))
		j.s = string(j.buf)
		j.buf = nil
		j.done = true
	}
	return j.s[j.offs[i]:j.offs[i+1]]
}

func pqJSONKey(name string) []byte {
	b := pqAppendJSONString(nil, name)
	return append(b, ':')
}

func pqJSONCompile(a arrow.Array) pqJSONWriter {
	switch v := a.(type) {
	case *array.Struct:
		typ := v.DataType().(*arrow.StructType)
		if pqIsVariant(typ) {
			return nil
		}
		obj := &pqJSONObj{}
		for k, f := range typ.Fields() {
			child := v.Field(k)
			w := pqJSONCompile(child)
			if w == nil {
				continue
			}
			obj.fields = append(obj.fields, pqJSONField{key: pqJSONKey(f.Name), arr: child, write: w})
		}
		return obj.write
	case *array.Int64:
		return func(b []byte, i int) []byte { return strconv.AppendInt(b, v.Value(i), 10) }
	case *array.Int32:
		return func(b []byte, i int) []byte { return strconv.AppendInt(b, int64(v.Value(i)), 10) }
	case *array.Int16:
		return func(b []byte, i int) []byte { return strconv.AppendInt(b, int64(v.Value(i)), 10) }
	case *array.Int8:
		return func(b []byte, i int) []byte { return strconv.AppendInt(b, int64(v.Value(i)), 10) }
	case *array.Uint64:
		return func(b []byte, i int) []byte { return strconv.AppendUint(b, v.Value(i), 10) }
	case *array.Uint32:
		return func(b []byte, i int) []byte { return strconv.AppendUint(b, uint64(v.Value(i)), 10) }
	case *array.Uint16:
		return func(b []byte, i int) []byte { return strconv.AppendUint(b, uint64(v.Value(i)), 10) }
	case *array.Uint8:
		return func(b []byte, i int) []byte { return strconv.AppendUint(b, uint64(v.Value(i)), 10) }
	case *array.Float64:
		return func(b []byte, i int) []byte { return pqAppendFloat(b, v.Value(i), 64) }
	case *array.Float32:
		return func(b []byte, i int) []byte { return pqAppendFloat(b, float64(v.Value(i)), 32) }
	case *array.Boolean:
		return func(b []byte, i int) []byte { return strconv.AppendBool(b, v.Value(i)) }
	case *array.String:
		return func(b []byte, i int) []byte { return pqAppendJSONString(b, v.Value(i)) }
	case *array.LargeString:
		return func(b []byte, i int) []byte { return pqAppendJSONString(b, v.Value(i)) }
	case *array.StringView:
		return func(b []byte, i int) []byte { return pqAppendJSONString(b, v.Value(i)) }
	case *array.Date32:
		return func(b []byte, i int) []byte {
			t := time.Unix(int64(v.Value(i))*86400, 0).UTC()
			return pqAppendQuotedTime(b, t, "2006-01-02")
		}
	case *array.Date64:
		return func(b []byte, i int) []byte {
			t := time.UnixMilli(int64(v.Value(i))).UTC()
			return pqAppendQuotedTime(b, t, "2006-01-02")
		}
	case *array.Timestamp:
		unit := v.DataType().(*arrow.TimestampType).Unit
		return func(b []byte, i int) []byte { return pqAppendTimestamp(b, int64(v.Value(i)), unit) }
	case *array.Decimal128:
		scale := v.DataType().(*arrow.Decimal128Type).Scale
		return func(b []byte, i int) []byte { return pqAppendDecimal128(b, v.Value(i), scale) }
	case *array.Decimal256:
		scale := v.DataType().(*arrow.Decimal256Type).Scale
		return func(b []byte, i int) []byte { return pqAppendDecimalBig(b, v.Value(i).BigInt(), scale) }
	case *array.Decimal64:
		scale := v.DataType().(*arrow.Decimal64Type).Scale
		return func(b []byte, i int) []byte { return pqAppendDecimalInt(b, int64(v.Value(i)), scale) }
	case *array.Decimal32:
		scale := v.DataType().(*arrow.Decimal32Type).Scale
		return func(b []byte, i int) []byte { return pqAppendDecimalInt(b, int64(v.Value(i)), scale) }
	}
	return nil
}

// pqIsVariant reports whether a stats struct is a Parquet variant (metadata and value binaries),
// whose JSON form (z85) this decoder does not produce.
func pqIsVariant(t *arrow.StructType) bool {
	if t.NumFields() < 2 {
		return false
	}
	_, m := t.FieldIdx("metadata")
	_, v := t.FieldIdx("value")
	if !m || !v {
		return false
	}
	f, _ := t.FieldByName("metadata")
	return f.Type.ID() == arrow.BINARY || f.Type.ID() == arrow.LARGE_BINARY || f.Type.ID() == arrow.BINARY_VIEW
}

// pqAppendFloat writes f as encoding/json does; NaN and infinities as the strings Spark writes.
func pqAppendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

func pqAppendQuotedTime(b []byte, t time.Time, layout string) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, layout)
	return append(b, '"')
}

// pqAppendTimestamp writes a timestamp as Spark writes it in JSON stats (RFC 3339 in UTC with
// milliseconds), keeping microseconds or nanoseconds when the value has them.
func pqAppendTimestamp(b []byte, v int64, unit arrow.TimeUnit) []byte {
	var t time.Time
	switch unit {
	case arrow.Second:
		t = time.Unix(v, 0)
	case arrow.Millisecond:
		t = time.UnixMilli(v)
	case arrow.Microsecond:
		t = time.UnixMicro(v)
	default:
		t = time.Unix(0, v)
	}
	t = t.UTC()
	layout := "2006-01-02T15:04:05.000Z07:00"
	switch ns := t.Nanosecond(); {
	case ns%1e6 == 0:
	case ns%1e3 == 0:
		layout = "2006-01-02T15:04:05.000000Z07:00"
	default:
		layout = "2006-01-02T15:04:05.000000000Z07:00"
	}
	return pqAppendQuotedTime(b, t, layout)
}

func pqAppendDecimal128(b []byte, n decimal128.Num, scale int32) []byte {
	hi, lo := n.HighBits(), n.LowBits()
	if (hi == 0 && int64(lo) >= 0) || (hi == -1 && int64(lo) < 0) {
		return pqAppendDecimalInt(b, int64(lo), scale)
	}
	return pqAppendDecimalBig(b, n.BigInt(), scale)
}

func pqAppendDecimalInt(b []byte, v int64, scale int32) []byte {
	if scale <= 0 {
		b = strconv.AppendInt(b, v, 10)
		for ; scale < 0 && v != 0; scale++ {
			b = append(b, '0')
		}
		return b
	}
	var tmp [24]byte
	digits := strconv.AppendUint(tmp[:0], pqAbs(v), 10)
	return pqPlaceDecimalPoint(b, v < 0, digits, int(scale))
}

func pqAbs(v int64) uint64 {
	if v < 0 {
		return uint64(-(v + 1)) + 1
	}
	return uint64(v)
}

func pqAppendDecimalBig(b []byte, v *big.Int, scale int32) []byte {
	if scale <= 0 {
		b = v.Append(b, 10)
		for ; scale < 0 && v.Sign() != 0; scale++ {
			b = append(b, '0')
		}
		return b
	}
	neg := v.Sign() < 0
	digits := new(big.Int).Abs(v).Append(nil, 10)
	return pqPlaceDecimalPoint(b, neg, digits, int(scale))
}

func pqPlaceDecimalPoint(b []byte, neg bool, digits []byte, scale int) []byte {
	if neg {
		b = append(b, '-')
	}
	if len(digits) <= scale {
		b = append(b, '0', '.')
		for k := len(digits); k < scale; k++ {
			b = append(b, '0')
		}
		return append(b, digits...)
	}
	at := len(digits) - scale
	b = append(b, digits[:at]...)
	b = append(b, '.')
	return append(b, digits[at:]...)
}

const pqHex = "0123456789abcdef"

// pqAppendJSONString writes s as a JSON string: quotes, backslashes and control characters
// escaped, invalid UTF-8 replaced by U+FFFD, everything else (including <, > and &) as is.
func pqAppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', pqHex[c>>4], pqHex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// ---------------------------------------------------------------------------------------------
// Encoding

// CheckpointWriteOption tunes EncodeCheckpoint and NewCheckpointWriter.
type CheckpointWriteOption func(*pqWriteConfig)

type pqWriteConfig struct {
	rowGroupRows int
	codec        compress.Compression
	v2           bool
}

// WithCheckpointRowGroupRows sets the rows per row group (default 65536). The writer holds two
// row groups' worth of levels and value references (not copies) in memory.
func WithCheckpointRowGroupRows(n int) CheckpointWriteOption {
	return func(c *pqWriteConfig) {
		if n > 0 {
			c.rowGroupRows = n
		}
	}
}

// WithCheckpointZstd compresses with zstd instead of snappy (smaller; read by Spark 3.2+,
// delta-rs and DuckDB, but not by every old reader).
func WithCheckpointZstd() CheckpointWriteOption {
	return func(c *pqWriteConfig) { c.codec = compress.Codecs.Zstd }
}

// WithCheckpointV2Columns adds the checkpointMetadata and sidecar columns, for a V2-spec Parquet
// checkpoint (which must then hold one CheckpointMetadata action).
func WithCheckpointV2Columns() CheckpointWriteOption {
	return func(c *pqWriteConfig) { c.v2 = true }
}

// EncodeCheckpoint writes actions as a classic Parquet checkpoint in the protocol's checkpoint
// schema, which Spark, delta-rs and DuckDB read: top-level columns txn, add, remove, metaData,
// protocol and domainMetadata, every field nullable, one action per row and the other columns
// null. Longs are INT64, ints (protocol versions, deletion vector offset and size) INT32,
// strings UTF-8 BYTE_ARRAY, maps MAP<string,string> (key_value/key/value) and arrays
// three-level LISTs. add.stats is the JSON string; remove has the fields the protocol keeps in
// checkpoints (no stats, no tags). Map keys are written sorted, so equal input gives equal
// files. Rows are written in row groups (see WithCheckpointRowGroupRows) by a second goroutine
// while the next row group is assembled; memory beyond the actions stays bounded by two row
// groups of levels and value references. CDC and commitInfo actions are an error: checkpoints
// must not hold them.
func EncodeCheckpoint(w io.Writer, actions []Action, opts ...CheckpointWriteOption) error {
	cw, err := NewCheckpointWriter(w, opts...)
	if err != nil {
		return err
	}
	for i := range actions {
		if err := cw.Write(&actions[i]); err != nil {
			cw.abort()
			return fmt.Errorf("action %d: %w", i, err)
		}
	}
	return cw.Close()
}

// CheckpointWriter writes a Parquet checkpoint action by action; see EncodeCheckpoint. The
// strings of written actions are referenced, not copied, until their row group is written, so
// they must not be modified meanwhile (Go strings cannot be). Close must be called to finish the
// file; it does not close w.
type CheckpointWriter struct {
	cfg     pqWriteConfig
	fw      *file.Writer
	cols    []*pqWCol // top-level action columns, in schema order
	leaves  []*pqWLeaf
	byName  map[string]*pqWCol
	rows    int
	keys    []string
	actions int64

	// Row groups go to the writer goroutine through work; written batches come back through
	// free to be reused; the goroutine's result arrives on done.
	cur      *pqWBatch
	work     chan *pqWBatch
	free     chan *pqWBatch
	done     chan error
	started  bool
	finished bool
	wErr     error
	err      error
	closed   bool
}

// pqWBatch is one row group: the levels and values of every leaf.
type pqWBatch struct{ leaves []pqWLeafData }

type pqWLeafData struct {
	defs, reps []int16
	ba         []parquet.ByteArray
	i64        []int64
	i32        []int32
	bo         []bool
}

func (d *pqWLeafData) reset() {
	d.defs, d.reps, d.ba, d.i64, d.i32, d.bo = d.defs[:0], d.reps[:0], d.ba[:0], d.i64[:0], d.i32[:0], d.bo[:0]
}

// pqWLeaf is one leaf column being assembled.
type pqWLeaf struct {
	path   string
	maxDef int16
	rep    bool
	typ    parquet.Type
	*pqWLeafData
}

// pqWCol is a top-level action column and its leaves.
type pqWCol struct {
	name    string
	leaves  []*pqWLeaf
	pending int // rows without this action whose levels are not appended yet
	leaf    map[string]*pqWLeaf
	f       *pqWFileCols // add and remove: the leaves by field
}

// pqWFileCols are the leaves of add or remove (remove has no stats, tags or clusteringProvider).
type pqWFileCols struct {
	path, pvKey, pvVal, size, mod, dataChange, stats, tagsKey, tagsVal *pqWLeaf
	dvType, dvPath, dvOffset, dvSize, dvCard                           *pqWLeaf
	baseRowID, defaultRowCommitVersion, clustering                     *pqWLeaf
	deletionTimestamp, extended                                        *pqWLeaf
}

func (c *pqWCol) fileCols() *pqWFileCols {
	l := c.leaf
	return &pqWFileCols{path: l["path"], pvKey: l["partitionValues.key_value.key"], pvVal: l["partitionValues.key_value.value"],
		size: l["size"], mod: l["modificationTime"], dataChange: l["dataChange"], stats: l["stats"],
		tagsKey: l["tags.key_value.key"], tagsVal: l["tags.key_value.value"],
		dvType: l["deletionVector.storageType"], dvPath: l["deletionVector.pathOrInlineDv"], dvOffset: l["deletionVector.offset"],
		dvSize: l["deletionVector.sizeInBytes"], dvCard: l["deletionVector.cardinality"],
		baseRowID: l["baseRowId"], defaultRowCommitVersion: l["defaultRowCommitVersion"], clustering: l["clusteringProvider"],
		deletionTimestamp: l["deletionTimestamp"], extended: l["extendedFileMetadata"]}
}

var (
	pqStrT  = arrow.BinaryTypes.String
	pqI64T  = arrow.PrimitiveTypes.Int64
	pqI32T  = arrow.PrimitiveTypes.Int32
	pqBoolT = arrow.FixedWidthTypes.Boolean
)

func pqF(name string, t arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: true}
}

func pqMapT() arrow.DataType { return arrow.MapOf(pqStrT, pqStrT) }
func pqListT() arrow.DataType {
	return arrow.ListOfField(arrow.Field{Name: "element", Type: pqStrT, Nullable: true})
}

func pqDVT() arrow.DataType {
	return arrow.StructOf(pqF("storageType", pqStrT), pqF("pathOrInlineDv", pqStrT), pqF("offset", pqI32T),
		pqF("sizeInBytes", pqI32T), pqF("cardinality", pqI64T))
}

// pqCheckpointSchema is the protocol's checkpoint schema, field by field as Spark writes it.
func pqCheckpointSchema(v2 bool) *arrow.Schema {
	fields := []arrow.Field{
		pqF("txn", arrow.StructOf(pqF("appId", pqStrT), pqF("version", pqI64T), pqF("lastUpdated", pqI64T))),
		pqF("add", arrow.StructOf(
			pqF("path", pqStrT), pqF("partitionValues", pqMapT()), pqF("size", pqI64T),
			pqF("modificationTime", pqI64T), pqF("dataChange", pqBoolT), pqF("stats", pqStrT),
			pqF("tags", pqMapT()), pqF("deletionVector", pqDVT()), pqF("baseRowId", pqI64T),
			pqF("defaultRowCommitVersion", pqI64T), pqF("clusteringProvider", pqStrT))),
		pqF("remove", arrow.StructOf(
			pqF("path", pqStrT), pqF("deletionTimestamp", pqI64T), pqF("dataChange", pqBoolT),
			pqF("extendedFileMetadata", pqBoolT), pqF("partitionValues", pqMapT()), pqF("size", pqI64T),
			pqF("deletionVector", pqDVT()), pqF("baseRowId", pqI64T), pqF("defaultRowCommitVersion", pqI64T))),
		pqF("metaData", arrow.StructOf(
			pqF("id", pqStrT), pqF("name", pqStrT), pqF("description", pqStrT),
			pqF("format", arrow.StructOf(pqF("provider", pqStrT), pqF("options", pqMapT()))),
			pqF("schemaString", pqStrT), pqF("partitionColumns", pqListT()),
			pqF("configuration", pqMapT()), pqF("createdTime", pqI64T))),
		pqF("protocol", arrow.StructOf(
			pqF("minReaderVersion", pqI32T), pqF("minWriterVersion", pqI32T),
			pqF("readerFeatures", pqListT()), pqF("writerFeatures", pqListT()))),
		pqF("domainMetadata", arrow.StructOf(pqF("domain", pqStrT), pqF("configuration", pqStrT), pqF("removed", pqBoolT))),
	}
	if v2 {
		fields = append(fields,
			pqF("checkpointMetadata", arrow.StructOf(pqF("version", pqI64T), pqF("tags", pqMapT()))),
			pqF("sidecar", arrow.StructOf(pqF("path", pqStrT), pqF("sizeInBytes", pqI64T),
				pqF("modificationTime", pqI64T), pqF("tags", pqMapT()))))
	}
	return arrow.NewSchema(fields, nil)
}

// NewCheckpointWriter starts a Parquet checkpoint on w.
func NewCheckpointWriter(w io.Writer, opts ...CheckpointWriteOption) (*CheckpointWriter, error) {
	cfg := pqWriteConfig{rowGroupRows: 1 << 16, codec: compress.Codecs.Snappy}
	for _, o := range opts {
		o(&cfg)
	}
	props := []parquet.WriterProperty{
		parquet.WithCompression(cfg.codec),
		parquet.WithDataPageVersion(parquet.DataPageV1),
		parquet.WithCreatedBy("lake"),
		// No dictionaries: paths and stats are unique per file, and the repeated partition values
		// compress as well plain (a dictionary costs an allocation per value in arrow-go).
		parquet.WithDictionaryDefault(false),
		// Min/max of the stats JSON strings in the footer would be large and useless.
		parquet.WithStatsFor("add.stats", false),
	}
	wprops := parquet.NewWriterProperties(props...)
	sch, err := pqarrow.ToParquet(pqCheckpointSchema(cfg.v2), wprops, pqarrow.DefaultWriterProps())
	if err != nil {
		return nil, fmt.Errorf("checkpoint schema: %w", err)
	}
	cw := &CheckpointWriter{cfg: cfg, byName: map[string]*pqWCol{}}
	for i := 0; i < sch.NumColumns(); i++ {
		c := sch.Column(i)
		p := c.ColumnPath()
		l := &pqWLeaf{path: c.Path(), maxDef: c.MaxDefinitionLevel(), rep: c.MaxRepetitionLevel() > 0,
			typ: c.PhysicalType(), pqWLeafData: &pqWLeafData{}}
		col := cw.byName[p[0]]
		if col == nil {
			col = &pqWCol{name: p[0], leaf: map[string]*pqWLeaf{}}
			cw.byName[p[0]] = col
			cw.cols = append(cw.cols, col)
		}
		col.leaves = append(col.leaves, l)
		col.leaf[strings.Join(p[1:], ".")] = l
		cw.leaves = append(cw.leaves, l)
	}
	if err := cw.checkLevels(); err != nil {
		return nil, err
	}
	cw.byName["add"].f = cw.byName["add"].fileCols()
	cw.byName["remove"].f = cw.byName["remove"].fileCols()
	fw, err := file.NewParquetWriterWithError(w, sch.Root(), file.WithWriterProps(wprops))
	if err != nil {
		return nil, fmt.Errorf("parquet writer: %w", err)
	}
	cw.fw = fw
	cw.work = make(chan *pqWBatch, 1)
	cw.free = make(chan *pqWBatch, 2)
	cw.done = make(chan error, 1)
	cw.free <- &pqWBatch{leaves: make([]pqWLeafData, len(cw.leaves))}
	cw.use(&pqWBatch{leaves: make([]pqWLeafData, len(cw.leaves))})
	return cw, nil
}

// checkLevels checks the maximum definition levels the row assembly below relies on: every field
// optional, map keys required.
func (cw *CheckpointWriter) checkLevels() error {
	for _, c := range cw.cols {
		for sub, l := range c.leaf {
			want := int16(2)
			switch {
			case strings.HasSuffix(sub, ".key_value.key"), strings.HasPrefix(sub, "deletionVector."),
				sub == "format.provider":
				want = 3
			case strings.HasSuffix(sub, ".key_value.value"), strings.HasSuffix(sub, ".list.element"):
				want = 4
			}
			if strings.HasPrefix(sub, "format.options.") {
				want++
			}
			if l.maxDef != want {
				return fmt.Errorf("checkpoint schema: column %s has definition level %d, want %d", l.path, l.maxDef, want)
			}
		}
	}
	return nil
}

// use points the leaves at batch b.
func (cw *CheckpointWriter) use(b *pqWBatch) {
	cw.cur = b
	for i, l := range cw.leaves {
		b.leaves[i].reset()
		l.pqWLeafData = &b.leaves[i]
	}
}

// wait waits for the writer goroutine to end and returns its error.
func (cw *CheckpointWriter) wait() error {
	if !cw.finished {
		cw.wErr = <-cw.done
		cw.finished = true
	}
	return cw.wErr
}

// Appending levels and values. Null rows of an action are appended in bulk (def 0).

func (l *pqWLeaf) level(def int16, rep int16) {
	l.defs = append(l.defs, def)
	if l.rep {
		l.reps = append(l.reps, rep)
	}
}

func (l *pqWLeaf) nulls(n int) {
	l.defs = slices.Grow(l.defs, n)[:len(l.defs)+n]
	clear(l.defs[len(l.defs)-n:])
	if l.rep {
		l.reps = slices.Grow(l.reps, n)[:len(l.reps)+n]
		clear(l.reps[len(l.reps)-n:])
	}
}

// pqBytes is a read-only view of s for the Parquet writer, which copies what it keeps.
func pqBytes(s string) parquet.ByteArray {
	return parquet.ByteArray(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// str appends a string field: value at maxDef, null one below; up levels below for null parents.
func (l *pqWLeaf) str(s string, up int16) {
	l.level(l.maxDef-up, 0)
	if up == 0 {
		l.ba = append(l.ba, pqBytes(s))
	}
}

func (l *pqWLeaf) optStr(s *string) {
	if s == nil {
		l.level(l.maxDef-1, 0)
		return
	}
	l.str(*s, 0)
}

func (l *pqWLeaf) i64v(v int64) {
	l.level(l.maxDef, 0)
	l.i64 = append(l.i64, v)
}

func (l *pqWLeaf) optI64(v *int64) {
	if v == nil {
		l.level(l.maxDef-1, 0)
		return
	}
	l.i64v(*v)
}

func (l *pqWLeaf) i32v(v int32) {
	l.level(l.maxDef, 0)
	l.i32 = append(l.i32, v)
}

func (l *pqWLeaf) boolv(v bool) {
	l.level(l.maxDef, 0)
	l.bo = append(l.bo, v)
}

// Map key leaves have key at maxDef (required), an empty map one below, a null map two below;
// value leaves have the value at maxDef, a null value one below, then empty and null maps.

func (cw *CheckpointWriter) sortedKeys(each func(func(string))) []string {
	cw.keys = cw.keys[:0]
	each(func(k string) { cw.keys = append(cw.keys, k) })
	if len(cw.keys) > 1 {
		slices.Sort(cw.keys)
	}
	return cw.keys
}

func (cw *CheckpointWriter) strMap(k, v *pqWLeaf, m map[string]string, nullIfNil bool) {
	switch {
	case m == nil && nullIfNil:
		k.level(k.maxDef-2, 0)
		v.level(v.maxDef-3, 0)
		return
	case len(m) == 0:
		k.level(k.maxDef-1, 0)
		v.level(v.maxDef-2, 0)
		return
	}
	keys := cw.sortedKeys(func(add func(string)) {
		for key := range m {
			add(key)
		}
	})
	for i, key := range keys {
		rep := int16(pqBool01(i > 0))
		k.level(k.maxDef, rep)
		k.ba = append(k.ba, pqBytes(key))
		v.level(v.maxDef, rep)
		v.ba = append(v.ba, pqBytes(m[key]))
	}
}

func (cw *CheckpointWriter) ptrMap(k, v *pqWLeaf, m map[string]*string, nullIfNil bool) {
	switch {
	case m == nil && nullIfNil:
		k.level(k.maxDef-2, 0)
		v.level(v.maxDef-3, 0)
		return
	case len(m) == 0:
		k.level(k.maxDef-1, 0)
		v.level(v.maxDef-2, 0)
		return
	case len(m) == 1:
		for key, val := range m {
			k.level(k.maxDef, 0)
			k.ba = append(k.ba, pqBytes(key))
			if val == nil {
				v.level(v.maxDef-1, 0)
			} else {
				v.level(v.maxDef, 0)
				v.ba = append(v.ba, pqBytes(*val))
			}
		}
		return
	}
	keys := cw.sortedKeys(func(add func(string)) {
		for key := range m {
			add(key)
		}
	})
	for i, key := range keys {
		rep := int16(pqBool01(i > 0))
		k.level(k.maxDef, rep)
		k.ba = append(k.ba, pqBytes(key))
		if val := m[key]; val == nil {
			v.level(v.maxDef-1, rep)
		} else {
			v.level(v.maxDef, rep)
			v.ba = append(v.ba, pqBytes(*val))
		}
	}
}

// strList appends a list: elements at maxDef, an empty list two below, a null list three below.
func (l *pqWLeaf) strList(xs []string, null bool) {
	switch {
	case null:
		l.level(l.maxDef-3, 0)
	case len(xs) == 0:
		l.level(l.maxDef-2, 0)
	default:
		for i, s := range xs {
			l.level(l.maxDef, int16(pqBool01(i > 0)))
			l.ba = append(l.ba, pqBytes(s))
		}
	}
}

func pqBool01(b bool) int {
	if b {
		return 1
	}
	return 0
}

// dv appends a deletionVector struct: its leaves sit at maxDef 3 (action, struct, field).
func (f *pqWFileCols) dv(dv *DeletionVector) {
	st, p, off, sz, card := f.dvType, f.dvPath, f.dvOffset, f.dvSize, f.dvCard
	if dv == nil {
		st.level(st.maxDef-2, 0)
		p.level(p.maxDef-2, 0)
		off.level(off.maxDef-2, 0)
		sz.level(sz.maxDef-2, 0)
		card.level(card.maxDef-2, 0)
		return
	}
	st.str(dv.StorageType, 0)
	p.str(dv.PathOrInlineDv, 0)
	if dv.Offset == nil {
		off.level(off.maxDef-1, 0)
	} else {
		off.i32v(*dv.Offset)
	}
	sz.i32v(dv.SizeInBytes)
	card.i64v(dv.Cardinality)
}

// Write adds one action (one row per action field set; one is the norm).
func (cw *CheckpointWriter) Write(a *Action) error {
	if cw.err != nil {
		return cw.err
	}
	if cw.closed {
		return errors.New("checkpoint writer is closed")
	}
	switch {
	case a.IsEmpty():
		return errors.New("empty action")
	case a.CDC != nil:
		return errors.New("a checkpoint must not hold cdc actions")
	case a.CommitInfo != nil:
		return errors.New("a checkpoint must not hold commitInfo actions")
	case (a.Sidecar != nil || a.CheckpointMetadata != nil) && !cw.cfg.v2:
		return errors.New("sidecar and checkpointMetadata actions need WithCheckpointV2Columns")
	}
	if a.Txn != nil {
		c := cw.row("txn")
		c.leaf["appId"].str(a.Txn.AppID, 0)
		c.leaf["version"].i64v(a.Txn.Version)
		c.leaf["lastUpdated"].optI64(a.Txn.LastUpdated)
		if err := cw.endRow(); err != nil {
			return err
		}
	}
	if a.Add != nil {
		cw.add(cw.row("add"), a.Add)
		if err := cw.endRow(); err != nil {
			return err
		}
	}
	if a.Remove != nil {
		cw.remove(cw.row("remove"), a.Remove)
		if err := cw.endRow(); err != nil {
			return err
		}
	}
	if a.Metadata != nil {
		cw.metadata(cw.row("metaData"), a.Metadata)
		if err := cw.endRow(); err != nil {
			return err
		}
	}
	if a.Protocol != nil {
		p, c := a.Protocol, cw.row("protocol")
		c.leaf["minReaderVersion"].i32v(int32(p.MinReaderVersion))
		c.leaf["minWriterVersion"].i32v(int32(p.MinWriterVersion))
		// readerFeatures must be non-null at reader version 3, writerFeatures at writer version
		// 7; below those they are null.
		c.leaf["readerFeatures.list.element"].strList(p.ReaderFeatures, p.MinReaderVersion < 3 && p.ReaderFeatures == nil)
		c.leaf["writerFeatures.list.element"].strList(p.WriterFeatures, p.MinWriterVersion < 7 && p.WriterFeatures == nil)
		if err := cw.endRow(); err != nil {
			return err
		}
	}
	if a.DomainMetadata != nil {
		d, c := a.DomainMetadata, cw.row("domainMetadata")
		c.leaf["domain"].str(d.Domain, 0)
		c.leaf["configuration"].str(d.Configuration, 0)
		c.leaf["removed"].boolv(d.Removed)
		if err := cw.endRow(); err != nil {
			return err
		}
	}
	if a.CheckpointMetadata != nil {
		c := cw.row("checkpointMetadata")
		c.leaf["version"].i64v(a.CheckpointMetadata.Version)
		cw.strMap(c.leaf["tags.key_value.key"], c.leaf["tags.key_value.value"], a.CheckpointMetadata.Tags, true)
		if err := cw.endRow(); err != nil {
			return err
		}
	}
	if a.Sidecar != nil {
		s, c := a.Sidecar, cw.row("sidecar")
		c.leaf["path"].str(s.Path, 0)
		c.leaf["sizeInBytes"].i64v(s.SizeInBytes)
		c.leaf["modificationTime"].i64v(s.ModificationTime)
		cw.strMap(c.leaf["tags.key_value.key"], c.leaf["tags.key_value.value"], s.Tags, true)
		if err := cw.endRow(); err != nil {
			return err
		}
	}
	cw.actions++
	return nil
}

// row starts a row holding the named action: the other columns get a null row.
func (cw *CheckpointWriter) row(name string) *pqWCol {
	var col *pqWCol
	for _, c := range cw.cols {
		if c.name == name {
			col = c
			continue
		}
		c.pending++
	}
	if col.pending > 0 {
		for _, l := range col.leaves {
			l.nulls(col.pending)
		}
		col.pending = 0
	}
	return col
}

func (cw *CheckpointWriter) endRow() error {
	cw.rows++
	if cw.rows >= cw.cfg.rowGroupRows {
		return cw.flush()
	}
	return nil
}

func (cw *CheckpointWriter) add(c *pqWCol, a *Add) {
	f := c.f
	f.path.str(a.Path, 0)
	cw.ptrMap(f.pvKey, f.pvVal, a.PartitionValues, false)
	f.size.i64v(a.Size)
	f.mod.i64v(a.ModificationTime)
	f.dataChange.boolv(a.DataChange)
	if a.Stats == "" {
		f.stats.str("", 1)
	} else {
		f.stats.str(a.Stats, 0)
	}
	cw.strMap(f.tagsKey, f.tagsVal, a.Tags, true)
	f.dv(a.DeletionVector)
	f.baseRowID.optI64(a.BaseRowID)
	f.defaultRowCommitVersion.optI64(a.DefaultRowCommitVersion)
	f.clustering.optStr(a.ClusteringProvider)
}

func (cw *CheckpointWriter) remove(c *pqWCol, r *Remove) {
	f := c.f
	f.path.str(r.Path, 0)
	f.deletionTimestamp.optI64(r.DeletionTimestamp)
	f.dataChange.boolv(r.DataChange)
	if r.ExtendedFileMetadata == nil {
		f.extended.level(f.extended.maxDef-1, 0)
	} else {
		f.extended.boolv(*r.ExtendedFileMetadata)
	}
	cw.ptrMap(f.pvKey, f.pvVal, r.PartitionValues, true)
	f.size.optI64(r.Size)
	f.dv(r.DeletionVector)
	f.baseRowID.optI64(r.BaseRowID)
	f.defaultRowCommitVersion.optI64(r.DefaultRowCommitVersion)
}

func (cw *CheckpointWriter) metadata(c *pqWCol, m *Metadata) {
	c.leaf["id"].str(m.ID, 0)
	c.leaf["name"].optStr(m.Name)
	c.leaf["description"].optStr(m.Description)
	provider := m.Format.Provider
	if provider == "" {
		provider = "parquet"
	}
	c.leaf["format.provider"].str(provider, 0)
	cw.strMap(c.leaf["format.options.key_value.key"], c.leaf["format.options.key_value.value"], m.Format.Options, false)
	c.leaf["schemaString"].str(m.SchemaString, 0)
	c.leaf["partitionColumns.list.element"].strList(m.PartitionColumns, false)
	cw.strMap(c.leaf["configuration.key_value.key"], c.leaf["configuration.key_value.value"], m.Configuration, false)
	c.leaf["createdTime"].optI64(m.CreatedTime)
}

// flush hands the row group to the writer goroutine (started on first use) and takes a free
// batch, waiting while both batches are in use.
func (cw *CheckpointWriter) flush() error {
	if cw.rows == 0 {
		return nil
	}
	for _, c := range cw.cols {
		if c.pending > 0 {
			for _, l := range c.leaves {
				l.nulls(c.pending)
			}
			c.pending = 0
		}
	}
	if !cw.started {
		cw.started = true
		go cw.writeLoop()
	}
	cw.rows = 0
	select {
	case cw.work <- cw.cur:
	case err := <-cw.done:
		cw.finished, cw.wErr = true, err
		cw.err = cmpOr(err, errors.New("checkpoint writer stopped"))
		return cw.err
	}
	select {
	case b := <-cw.free:
		cw.use(b)
	case err := <-cw.done:
		cw.finished, cw.wErr = true, err
		cw.err = cmpOr(err, errors.New("checkpoint writer stopped"))
		return cw.err
	}
	return nil
}

// writeLoop writes row groups until work is closed, then reports on done.
func (cw *CheckpointWriter) writeLoop() {
	var err error
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write row group: %v", r)
		}
		if err != nil {
			// Drain so that the producer is never stuck sending.
			go func() {
				for range cw.work {
				}
			}()
		}
		cw.done <- err
	}()
	for b := range cw.work {
		if err = cw.writeRowGroup(b); err != nil {
			return
		}
		// Keep the slices' memory, drop the references into the actions.
		for i := range b.leaves {
			clear(b.leaves[i].ba)
		}
		cw.free <- b // there are two batches and free holds two
	}
}

func (cw *CheckpointWriter) writeRowGroup(b *pqWBatch) error {
	rgw, err := cw.fw.AppendRowGroupChecked()
	if err != nil {
		return fmt.Errorf("write row group: %w", err)
	}
	for i := range b.leaves {
		d := &b.leaves[i]
		cc, err := rgw.NextColumn()
		if err != nil {
			return fmt.Errorf("write column %s: %w", cw.leaves[i].path, err)
		}
		var reps []int16
		if cw.leaves[i].rep {
			reps = d.reps
		}
		switch w := cc.(type) {
		case *file.ByteArrayColumnChunkWriter:
			_, err = w.WriteBatch(d.ba, d.defs, reps)
		case *file.Int64ColumnChunkWriter:
			_, err = w.WriteBatch(d.i64, d.defs, reps)
		case *file.Int32ColumnChunkWriter:
			_, err = w.WriteBatch(d.i32, d.defs, reps)
		case *file.BooleanColumnChunkWriter:
			_, err = w.WriteBatch(d.bo, d.defs, reps)
		default:
			err = fmt.Errorf("unexpected column writer %T", cc)
		}
		if err != nil {
			return fmt.Errorf("write column %s: %w", cw.leaves[i].path, err)
		}
	}
	if err := rgw.Close(); err != nil {
		return fmt.Errorf("write row group: %w", err)
	}
	return nil
}

// Close writes the last row group and the footer. It does not close the underlying writer.
func (cw *CheckpointWriter) Close() error {
	if cw.closed {
		return cw.err
	}
	if cw.err == nil {
		cw.err = cw.flush()
	}
	cw.closed = true
	if cw.started {
		close(cw.work)
		if err := cw.wait(); err != nil && cw.err == nil {
			cw.err = err
		}
	}
	if err := cw.fw.Close(); err != nil && cw.err == nil {
		cw.err = fmt.Errorf("finish parquet file: %w", err)
	}
	return cw.err
}

// abort stops the writer goroutine without finishing the file.
func (cw *CheckpointWriter) abort() {
	if !cw.closed {
		cw.closed = true
		if cw.started {
			close(cw.work)
			_ = cw.wait()
		}
	}
}

// Actions is the number of actions written so far.
func (cw *CheckpointWriter) Actions() int64 { return cw.actions }

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
