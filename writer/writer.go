package writer

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/google/uuid"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/internal/partval"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// Writer writes Arrow records into a table and commits them as one new version on Close.
//
// A Writer is used by one goroutine.
type Writer struct {
	t        *table.Table
	opts     *Options
	snap     *txlog.Snapshot
	md       txlog.Metadata  // the metadata the commit will carry (evolved by MergeSchema)
	proto    *txlog.Protocol // the protocol the commit will carry when MergeSchema upgrades it
	evolved  bool
	fw       *FileWriter
	preds    []boundPredicate
	skipped  bool
	rows     int64
	closed   bool
	failed   error
	mergeMax int64 // delta.columnMapping.maxColumnId while merging schemas
	txns     []txlog.Txn
}

// Result describes a finished write.
type Result struct {
	// Version is the committed version; for a skipped or empty write, the version read.
	Version int64
	// Skipped is true when Options.AppID had already committed Options.AppVersion (or a later
	// one): nothing was written.
	Skipped bool
	// Committed is false when nothing was committed (a skipped write, or an Append of no rows).
	Committed bool
	// Added are the add actions committed; Removed the paths of the files removed.
	Added   []txlog.Add
	Removed []string
	// Rows, Bytes are the rows and bytes of the files added; RemovedBytes those of the removed.
	Rows         int64
	Bytes        int64
	RemovedBytes int64
	// SchemaChanged is true when MergeSchema changed the table schema.
	SchemaChanged bool
}

// New starts a write into t, against opts.Snapshot or the latest snapshot. It checks that lake
// can write the table (protocol features, constraints), the options against the table, and
// whether an idempotent write (AppID) is already committed.
func New(ctx context.Context, t *table.Table, opts *Options) (*Writer, error) {
	snap := (*txlog.Snapshot)(nil)
	if opts != nil {
		snap = opts.Snapshot
	}
	if snap == nil {
		s, err := t.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		snap = s
	}
	o, err := opts.resolve(snap.Configuration())
	if err != nil {
		return nil, err
	}
	o.Snapshot = snap
	w := &Writer{t: t, opts: o, snap: snap, md: snap.Metadata()}
	w.md.Configuration = maps.Clone(w.md.Configuration)
	if err := checkWritable(snap); err != nil {
		return nil, fmt.Errorf("%s: %w", t.URI(), err)
	}
	if o.Mode != Append && isAppendOnly(snap) {
		return nil, fmt.Errorf("%s: table is append-only (delta.appendOnly=true): mode %s would delete data", t.URI(), o.Mode)
	}
	if o.AppID != "" {
		if v, ok := snap.AppTransactionVersion(o.AppID); ok && v >= o.AppVersion {
			w.skipped = true
			return w, nil
		}
	}
	if o.Mode == OverwriteWhere {
		w.preds, err = bindPredicates(o.Where, snap.Schema(), snap.PartitionColumns(), snap.Configuration()["delta.columnMapping.mode"])
		if err != nil {
			return nil, err
		}
	}
	w.fw, err = newFileWriter(t.Bucket(), w.md, snap.Protocol(), o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.URI(), err)
	}
	w.fw.setAccept(w.accept)
	return w, nil
}

// checkWritable refuses tables whose writer requirements lake does not implement.
func checkWritable(snap *txlog.Snapshot) error {
	if err := snap.Protocol().CheckWrite(snap.Schema()); err != nil {
		return err
	}
	for k := range snap.Configuration() {
		if strings.HasPrefix(k, "delta.constraints.") {
			return &txlog.UnsupportedFeatureError{Feature: "checkConstraints", Write: true}
		}
	}
	var bad error
	var walk func(t txlog.DataType)
	walk = func(t txlog.DataType) {
		switch v := t.(type) {
		case *txlog.StructType:
			for _, f := range v.Fields {
				if _, ok := f.Metadata["delta.invariants"]; ok && bad == nil {
					bad = &txlog.UnsupportedFeatureError{Feature: "invariants", Write: true}
				}
				if _, ok := f.Metadata["CURRENT_DEFAULT"]; ok && bad == nil {
					bad = &txlog.UnsupportedFeatureError{Feature: "allowColumnDefaults", Write: true}
				}
				walk(f.Type)
			}
		case *txlog.ArrayType:
			walk(v.ElementType)
		case *txlog.MapType:
			walk(v.KeyType)
			walk(v.ValueType)
		}
	}
	walk(snap.Schema())
	return bad
}

func isAppendOnly(snap *txlog.Snapshot) bool {
	return snap.Configuration()["delta.appendOnly"] == "true"
}

// accept refuses the rows of an OverwriteWhere write outside the partitions it replaces.
func (w *Writer) accept(pv map[string]*string) error {
	if w.opts.Mode != OverwriteWhere || matchAll(w.preds, pv) {
		return nil
	}
	var parts []string
	for _, pc := range w.fw.partitionColumns() {
		v := "null"
		if p := pv[pc.phys]; p != nil {
			v = *p
		}
		parts = append(parts, pc.name+"="+v)
	}
	return fmt.Errorf("%w: partition %s does not satisfy %s; the record was not written", ErrOutsideWhere, strings.Join(parts, "/"), predicateJSON(w.opts.Where))
}

// Skipped reports whether the write is skipped because Options.AppID already committed
// Options.AppVersion. A skipped Writer accepts and discards records.
func (w *Writer) Skipped() bool { return w.skipped }

// Snapshot is the snapshot the write reads.
func (w *Writer) Snapshot() *txlog.Snapshot { return w.snap }

// Schema is the Arrow schema of the records Write takes best (see FileWriter.Schema). It changes
// when MergeSchema adds columns.
func (w *Writer) Schema() *arrow.Schema {
	if w.fw == nil {
		s, _ := deltaarrow.Schema(w.snap.Schema())
		return s
	}
	return w.fw.Schema()
}

// Write writes the rows of rec. Columns are matched to the table's by name; see the package
// documentation for what fits. rec is checked and split by partition before Write returns, and
// its rows are then encoded in the background (FileWriter.Write): the caller may release rec
// when Write returns. A *SchemaError or an ErrOutsideWhere error refuses rec as a whole and
// leaves the Writer usable; any other error fails the Writer, and Close then returns it. An
// error of the background encoding of an earlier record is returned by this Write or by Close.
func (w *Writer) Write(ctx context.Context, rec arrow.RecordBatch) error {
	switch {
	case w.closed:
		return ErrClosed
	case w.failed != nil:
		return w.failed
	case w.skipped:
		return nil
	}
	var conf arrow.RecordBatch // rec conformed to a schema MergeSchema just changed
	if w.opts.MergeSchema {
		var err error
		if conf, err = w.merge(ctx, rec); err != nil {
			return err
		}
	}
	var err error
	if conf != nil {
		err = w.fw.writeConformed(ctx, conf)
		conf.Release()
	} else {
		err = w.fw.Write(ctx, rec)
	}
	if err != nil {
		if w.fw.failed() {
			w.failed = err
		}
		return err
	}
	w.rows += rec.NumRows()
	return nil
}

// merge adds the columns of in that the table lacks and widens the columns whose input type is a
// supported widening of theirs (MergeSchema). Files already open keep the old schema: they are
// finished first, and readers fill the new columns with nulls and widen the old types there.
// When the schema changes, merge returns rec conformed to the new schema (the caller writes it
// and releases it); otherwise nil, and rec is written as it is.
func (w *Writer) merge(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	in := rec.Schema()
	cur := w.fw.tableSchema()
	if w.mergeMax == 0 {
		w.mergeMax, _ = strconv.ParseInt(w.md.Configuration["delta.columnMapping.maxColumnId"], 10, 64)
	}
	maxID := w.mergeMax
	m := &schemaMerge{mapping: w.fw.columnMapping(), maxID: &maxID, version: w.snap.Version() + 1}
	merged, changed, err := mergeStruct(cur, in.Fields(), "", m)
	if err != nil || !changed {
		return nil, err
	}
	proto := w.snap.Protocol()
	if w.proto != nil {
		proto = *w.proto
	}
	md := w.md
	md.Configuration = maps.Clone(md.Configuration)
	newNTZ := usesNTZ(merged) && !usesNTZ(cur) && !proto.HasReaderFeature("timestampNtz")
	if m.widened {
		if err := checkWideningAllowed(md.Configuration); err != nil {
			return nil, err
		}
		md.Configuration[enableTypeWidening] = "true"
		proto = withTypeWidening(proto, newNTZ)
	} else if newNTZ {
		return nil, &SchemaError{Column: "(new columns)", Problem: "timestamp_ntz columns need the timestampNtz table feature, which this table does not have; add it before writing them"}
	}
	md.SchemaString = merged.String()
	if m.mapping {
		md.Configuration["delta.columnMapping.maxColumnId"] = strconv.FormatInt(maxID, 10)
	}
	nfw, err := newFileWriter(w.t.Bucket(), md, proto, w.opts)
	if err != nil {
		return nil, err
	}
	// The record must fit the new schema before the schema changes.
	conf, err := nfw.conform(ctx, rec)
	if err != nil {
		return nil, err
	}
	// Finish the open files under the old schema, then continue under the new one.
	if err := w.fw.closeOpen(); err != nil {
		conf.Release()
		w.failed = err
		return nil, err
	}
	nfw.setAccept(w.accept)
	nfw.adopt(w.fw)
	w.fw = nfw
	w.md = md
	if m.widened {
		w.proto = &proto
	}
	w.mergeMax = maxID
	w.evolved = true
	return conf, nil
}

// mergeStruct returns st with the fields of in it lacks appended (nullable), recursing into
// struct fields present in both and widening the types of the others where m allows.
func mergeStruct(st *txlog.StructType, in []arrow.Field, parent string, m *schemaMerge) (*txlog.StructType, bool, error) {
	out := &txlog.StructType{Fields: append([]txlog.StructField(nil), st.Fields...)}
	changed := false
	for _, f := range in {
		i := -1
		for j, tf := range out.Fields {
			if tf.Name == f.Name {
				i = j
				break
			}
			if i < 0 && strings.EqualFold(tf.Name, f.Name) {
				i = j
			}
		}
		path := joinPath(parent, f.Name)
		if i >= 0 {
			tst, ok1 := out.Fields[i].Type.(*txlog.StructType)
			ast, ok2 := f.Type.(*arrow.StructType)
			if ok1 && ok2 {
				sub, ch, err := mergeStruct(tst, ast.Fields(), path, m)
				if err != nil {
					return nil, false, err
				}
				if ch {
					out.Fields[i].Type = sub
					changed = true
				}
				continue
			}
			wf, ch, err := m.widenField(out.Fields[i], f.Type, path)
			if err != nil {
				return nil, false, err
			}
			if ch {
				out.Fields[i] = wf
				changed = true
			}
			continue
		}
		dt, err := deltaarrow.FromArrow(f.Type)
		if err != nil {
			return nil, false, &SchemaError{Column: path, GivenType: arrowTypeString(f.Type), Problem: fmt.Sprintf("cannot be added to the table: %v", err)}
		}
		nf := txlog.StructField{Name: f.Name, Type: dt, Nullable: true, Metadata: map[string]any{}}
		if m.mapping {
			assignIDs(&nf, m.maxID)
		}
		out.Fields = append(out.Fields, nf)
		changed = true
	}
	return out, changed, nil
}

// assignIDs gives a new field (and its nested struct fields) column-mapping ids and physical
// names.
func assignIDs(f *txlog.StructField, maxID *int64) {
	*maxID++
	if f.Metadata == nil {
		f.Metadata = map[string]any{}
	}
	f.Metadata["delta.columnMapping.id"] = float64(*maxID)
	f.Metadata["delta.columnMapping.physicalName"] = "col-" + uuid.NewString()
	var walk func(t txlog.DataType) txlog.DataType
	walk = func(t txlog.DataType) txlog.DataType {
		switch v := t.(type) {
		case *txlog.StructType:
			ns := &txlog.StructType{Fields: append([]txlog.StructField(nil), v.Fields...)}
			for i := range ns.Fields {
				assignIDs(&ns.Fields[i], maxID)
			}
			return ns
		case *txlog.ArrayType:
			return &txlog.ArrayType{ElementType: walk(v.ElementType), ContainsNull: v.ContainsNull}
		case *txlog.MapType:
			return &txlog.MapType{KeyType: walk(v.KeyType), ValueType: walk(v.ValueType), ValueContainsNull: v.ValueContainsNull}
		}
		return t
	}
	f.Type = walk(f.Type)
}

func usesNTZ(t txlog.DataType) bool {
	switch v := t.(type) {
	case *txlog.PrimitiveType:
		return v.Name == "timestamp_ntz"
	case *txlog.StructType:
		for _, f := range v.Fields {
			if usesNTZ(f.Type) {
				return true
			}
		}
	case *txlog.ArrayType:
		return usesNTZ(v.ElementType)
	case *txlog.MapType:
		return usesNTZ(v.KeyType) || usesNTZ(v.ValueType)
	}
	return false
}

// Close finishes the data files and commits them, with the removals of an overwrite, as one
// version. After a failed commit the files written are not part of the table; the
// *CommitError says how many, and that they are unreferenced. A Writer that failed earlier
// returns its error and abandons its files.
func (w *Writer) Close(ctx context.Context) (*Result, error) {
	if w.closed {
		return nil, ErrClosed
	}
	w.closed = true
	if w.skipped {
		return &Result{Version: w.snap.Version(), Skipped: true}, nil
	}
	if w.failed != nil {
		_ = w.fw.Abort(context.WithoutCancel(ctx))
		return nil, w.failed
	}
	adds, err := w.fw.Close(ctx)
	if err != nil {
		_ = w.fw.Abort(context.WithoutCancel(ctx))
		return nil, err
	}
	res := &Result{Version: w.snap.Version(), Added: adds, SchemaChanged: w.evolved}
	for _, a := range adds {
		res.Bytes += a.Size
	}
	res.Rows = w.rows

	now := time.Now().UnixMilli()
	var removes []txlog.Action
	if w.opts.Mode != Append {
		w.snap.AllFiles(func(a *txlog.Add) bool {
			if w.opts.Mode == OverwriteWhere && !matchAll(w.preds, a.PartitionValues) {
				return true
			}
			size := a.Size
			ext := true
			removes = append(removes, txlog.Action{Remove: &txlog.Remove{
				Path: a.Path, DeletionTimestamp: &now, DataChange: true, ExtendedFileMetadata: &ext,
				PartitionValues: a.PartitionValues, Size: &size, Stats: a.Stats, Tags: a.Tags,
				DeletionVector: a.DeletionVector, BaseRowID: a.BaseRowID,
				DefaultRowCommitVersion: a.DefaultRowCommitVersion,
			}})
			res.Removed = append(res.Removed, a.Path)
			res.RemovedBytes += a.Size
			return true
		})
	}
	if len(adds) == 0 && len(removes) == 0 && !w.evolved && w.opts.AppID == "" && len(w.txns) == 0 {
		return res, nil // an empty append: nothing to commit
	}

	txn := w.t.Log().NewTransaction(w.snap, &txlog.TxnOptions{
		Operation:           w.opts.Operation,
		OperationParameters: w.operationParameters(),
		OperationMetrics:    w.operationMetrics(res, len(removes)),
		UserMetadata:        w.opts.UserMetadata,
	})
	switch w.opts.Mode {
	case Overwrite:
		txn.ReadWholeTable()
	case OverwriteWhere:
		preds := w.preds
		txn.ReadPartitions(func(pv map[string]*string) bool { return matchAll(preds, pv) })
	}
	if w.proto != nil {
		txn.SetProtocol(*w.proto)
	}
	if w.evolved {
		txn.SetMetadata(w.md)
	}
	acts := make([]txlog.Action, 0, len(adds)+len(removes))
	for i := range adds {
		acts = append(acts, txlog.Action{Add: &adds[i]})
	}
	acts = append(acts, removes...)
	txn.AddActions(acts...)
	if w.opts.AppID != "" {
		txn.SetAppTransaction(w.opts.AppID, w.opts.AppVersion)
	}
	for _, t := range w.txns {
		txn.SetAppTransaction(t.AppID, t.Version)
	}
	v, err := txn.Commit(ctx)
	if err != nil {
		keys := make([]string, len(adds))
		for i, a := range adds {
			keys[i] = partval.DecodeURIPath(a.Path)
		}
		return nil, &CommitError{Files: keys, Err: err}
	}
	res.Version = v
	res.Committed = true
	return res, nil
}

// AddAppTransaction records one more txn (appID, version) in the commit Close makes, beside
// Options.AppID's (e.g. a marker that a multi-commit job finished).
func (w *Writer) AddAppTransaction(appID string, version int64) {
	w.txns = append(w.txns, txlog.Txn{AppID: appID, Version: version})
}

// SetCommitInfo adds operation parameters and metrics to the commit that Close will make (for
// values known only once every record was written); they win over the ones of Options.
func (w *Writer) SetCommitInfo(params, metrics map[string]any) {
	if w.opts.OperationParameters == nil {
		w.opts.OperationParameters = map[string]any{}
	}
	maps.Copy(w.opts.OperationParameters, params)
	if w.opts.OperationMetrics == nil {
		w.opts.OperationMetrics = map[string]any{}
	}
	maps.Copy(w.opts.OperationMetrics, metrics)
}

// Abort abandons the write: nothing is committed, and the data files written are deleted (best
// effort; they are not part of the table either way).
func (w *Writer) Abort(ctx context.Context) error {
	if w.closed {
		return nil
	}
	w.closed = true
	if w.fw == nil {
		return nil
	}
	return w.fw.Abort(ctx)
}

func (w *Writer) operationParameters() map[string]any {
	mode := "Append"
	if w.opts.Mode != Append {
		mode = "Overwrite"
	}
	pc, _ := json.Marshal(w.snap.PartitionColumns())
	if w.snap.PartitionColumns() == nil {
		pc = []byte("[]")
	}
	p := map[string]any{"mode": mode, "partitionBy": string(pc)}
	if w.opts.Mode == OverwriteWhere {
		p["predicate"] = predicateJSON(w.opts.Where)
	}
	if w.opts.MergeSchema {
		p["mergeSchema"] = "true"
	}
	maps.Copy(p, w.opts.OperationParameters)
	return p
}

// operationMetrics are Spark's WRITE metrics, as strings as Spark writes them, with
// Options.OperationMetrics.
func (w *Writer) operationMetrics(r *Result, removed int) map[string]any {
	m := sparkMetrics(r, removed)
	maps.Copy(m, w.opts.OperationMetrics)
	return m
}

func sparkMetrics(r *Result, removed int) map[string]any {
	m := map[string]any{
		"numFiles":       strconv.Itoa(len(r.Added)),
		"numOutputRows":  strconv.FormatInt(r.Rows, 10),
		"numOutputBytes": strconv.FormatInt(r.Bytes, 10),
	}
	if removed > 0 {
		m["numRemovedFiles"] = strconv.Itoa(removed)
		m["numRemovedBytes"] = strconv.FormatInt(r.RemovedBytes, 10)
	}
	return m
}
