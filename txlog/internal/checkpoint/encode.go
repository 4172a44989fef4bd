package checkpoint

// Encoding Actions as a classic (or V2-column) Parquet checkpoint in the protocol's checkpoint
// schema, row group by row group.

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakehouse/lake/internal/delta"
)

// ---------------------------------------------------------------------------------------------
// Encoding

// WriteOption tunes Encode and NewWriter.
type WriteOption func(*pqWriteConfig)

type pqWriteConfig struct {
	rowGroupRows int
	codec        compress.Compression
	v2           bool
}

// WithRowGroupRows sets the rows per row group (default 65536). The writer holds two
// row groups' worth of levels and value references (not copies) in memory.
func WithRowGroupRows(n int) WriteOption {
	return func(c *pqWriteConfig) {
		if n > 0 {
			c.rowGroupRows = n
		}
	}
}

// WithZstd compresses with zstd instead of snappy (smaller; read by Spark 3.2+,
// delta-rs and DuckDB, but not by every old reader).
func WithZstd() WriteOption {
	return func(c *pqWriteConfig) { c.codec = compress.Codecs.Zstd }
}

// WithV2Columns adds the checkpointMetadata and sidecar columns, for a V2-spec Parquet
// checkpoint (which must then hold one CheckpointMetadata action).
func WithV2Columns() WriteOption {
	return func(c *pqWriteConfig) { c.v2 = true }
}

// Encode writes actions as a classic Parquet checkpoint in the protocol's checkpoint
// schema, which Spark, delta-rs and DuckDB read: top-level columns txn, add, remove, metaData,
// protocol and domainMetadata, every field nullable, one action per row and the other columns
// null. Longs are INT64, ints (protocol versions, deletion vector offset and size) INT32,
// strings UTF-8 BYTE_ARRAY, maps MAP<string,string> (key_value/key/value) and arrays
// three-level LISTs. add.stats is the JSON string; remove has the fields the protocol keeps in
// checkpoints (no stats, no tags). Map keys are written sorted, so equal input gives equal
// files. Rows are written in row groups (see WithRowGroupRows) by a second goroutine
// while the next row group is assembled; memory beyond the actions stays bounded by two row
// groups of levels and value references. CDC and commitInfo actions are an error: checkpoints
// must not hold them.
func Encode(w io.Writer, actions []delta.Action, opts ...WriteOption) error {
	cw, err := NewWriter(w, opts...)
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

// EncodeRows writes the actions rows yields as a Parquet checkpoint, like Encode, and returns
// the number of actions written (also on error). A failed write is abandoned (the writer
// goroutine is stopped, the file left unfinished); EncodeRows does not close w.
//
// Ownership: EncodeRows does not keep an *Action, nor the structs and maps it points to, past
// the yield that produced it, so an iterator may reuse them. It does keep the bytes of their
// strings, referenced and not copied, until their row group is written (at the latest until
// EncodeRows returns): a string the iterator made over a buffer it then reuses (with
// unsafe.String) must not be yielded. A snapshot's file table hands out fresh adds for this.
func EncodeRows(w io.Writer, rows iter.Seq[*delta.Action], opts ...WriteOption) (int64, error) {
	cw, err := NewWriter(w, opts...)
	if err != nil {
		return 0, err
	}
	for a := range rows {
		if err := cw.Write(a); err != nil {
			cw.abort()
			return cw.Actions(), err
		}
	}
	return cw.Actions(), cw.Close()
}

// Writer writes a Parquet checkpoint action by action; see Encode. The
// strings of written actions are referenced, not copied, until their row group is written, so
// they must not be modified meanwhile (Go strings cannot be). Close must be called to finish the
// file; it does not close w.
type Writer struct {
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

// NewWriter starts a Parquet checkpoint on w.
func NewWriter(w io.Writer, opts ...WriteOption) (*Writer, error) {
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
	cw := &Writer{cfg: cfg, byName: map[string]*pqWCol{}}
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
func (cw *Writer) checkLevels() error {
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
func (cw *Writer) use(b *pqWBatch) {
	cw.cur = b
	for i, l := range cw.leaves {
		b.leaves[i].reset()
		l.pqWLeafData = &b.leaves[i]
	}
}

// wait waits for the writer goroutine to end and returns its error.
func (cw *Writer) wait() error {
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

func (cw *Writer) sortedKeys(each func(func(string))) []string {
	cw.keys = cw.keys[:0]
	each(func(k string) { cw.keys = append(cw.keys, k) })
	if len(cw.keys) > 1 {
		slices.Sort(cw.keys)
	}
	return cw.keys
}

func (cw *Writer) strMap(k, v *pqWLeaf, m map[string]string, nullIfNil bool) {
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

func (cw *Writer) ptrMap(k, v *pqWLeaf, m map[string]*string, nullIfNil bool) {
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
func (f *pqWFileCols) dv(dv *delta.DeletionVector) {
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
func (cw *Writer) Write(a *delta.Action) error {
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
		return errors.New("sidecar and checkpointMetadata actions need WithV2Columns")
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
func (cw *Writer) row(name string) *pqWCol {
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

func (cw *Writer) endRow() error {
	cw.rows++
	if cw.rows >= cw.cfg.rowGroupRows {
		return cw.flush()
	}
	return nil
}

func (cw *Writer) add(c *pqWCol, a *delta.Add) {
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

func (cw *Writer) remove(c *pqWCol, r *delta.Remove) {
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

func (cw *Writer) metadata(c *pqWCol, m *delta.Metadata) {
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
func (cw *Writer) flush() error {
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
func (cw *Writer) writeLoop() {
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

func (cw *Writer) writeRowGroup(b *pqWBatch) error {
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
func (cw *Writer) Close() error {
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
func (cw *Writer) abort() {
	if !cw.closed {
		cw.closed = true
		if cw.started {
			close(cw.work)
			_ = cw.wait()
		}
	}
}

// Actions is the number of actions written so far.
func (cw *Writer) Actions() int64 { return cw.actions }

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
