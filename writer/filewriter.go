package writer

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/google/uuid"
	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/lakehouse/lake/internal/partval"
	"github.com/lakehouse/lake/txlog"
)

// FileWriter writes Arrow records as Parquet data files of a table, without committing them: it
// is the part of Writer that compaction reuses. Close returns the add actions of the files; the
// caller commits them (or not).
//
// Records are split by partition; each partition has at most one open file, which is finished
// when it reaches Options.TargetFileSize. At most Options.MaxOpenFiles files are open at once,
// and the row groups they buffer are flushed when they exceed Options.MaxBufferedBytes, so memory
// stays bounded whatever the number of partitions. Records are encoded by a background
// goroutine fed by a bounded queue (see Write); the partitions of a record are encoded in
// parallel, by at most Options.Parallelism goroutines.
//
// A FileWriter is used by one goroutine.
type FileWriter struct {
	bucket *blob.Bucket
	opts   *Options
	lay    *layout
	props  *parquet.WriterProperties
	aprops pqarrow.ArrowWriterProperties
	// propList are the properties of props, for files that turn dictionary encoding off for some
	// columns (propsFor).
	propList []parquet.WriterProperty
	// dictCols marks the data columns that row groups may dictionary-encode (dictColumns).
	dictCols []bool
	// ratio estimates the compressed size of the rows waiting in open row groups.
	ratio ratio
	jobs  int64  // split records encoded, used by the encoder goroutine
	infix string // compression infix of file names

	clock  int64 // LRU clock, used by the encoder goroutine
	err    error // sticky: the writer failed
	closed bool

	// bg encodes the records Write queued, in the background; nil until the first Write, and
	// after the queue is drained (Close, closeOpen, fail).
	bg *encoder
	// encodeHook, when set (by tests), runs in the encoder before each queued record.
	encodeHook func(ctx context.Context) error

	// accept, when set, vets the partition values of each new partition before any of a
	// record's rows are written (OverwriteWhere).
	accept func(pv map[string]*string) error

	// mu guards what the goroutines of one Write share, and the uploads that a cancelled
	// context aborts.
	mu struct {
		sync.Mutex
		open    map[string]*partWriter // by group.key
		done    []txlog.Add            // finished files
		keys    []string               // object keys of every file started
		seq     int                    // files started
		cancels map[*partWriter]context.CancelFunc
	}
}

// NewFileWriter returns a FileWriter for a table with metadata md and protocol proto, writing
// into bucket (the table root). Only the file-related options are used: TargetFileSize,
// Compression, RowGroupRows, RowGroupBytes, MaxOpenFiles, MaxBufferedBytes, Parallelism,
// Allocator.
func NewFileWriter(bucket *blob.Bucket, md txlog.Metadata, proto txlog.Protocol, opts *Options) (*FileWriter, error) {
	o, err := opts.resolve(md.Configuration)
	if err != nil {
		return nil, err
	}
	return newFileWriter(bucket, md, proto, o)
}

func newFileWriter(bucket *blob.Bucket, md txlog.Metadata, proto txlog.Protocol, o *Options) (*FileWriter, error) {
	lay, err := newLayout(md, proto)
	if err != nil {
		return nil, err
	}
	c, infix, err := codec(o.Compression)
	if err != nil {
		return nil, err
	}
	props := []parquet.WriterProperty{
		parquet.WithAllocator(o.Allocator),
		parquet.WithCompression(c),
		parquet.WithCompressionLevel(compressionLevel(o.Compression)),
		parquet.WithStats(true),
		parquet.WithDictionaryDefault(true),
		// A 64 KiB dictionary limit makes high-cardinality columns (event ids) fall back to plain
		// encoding early: 1M interaction rows wrote 9% smaller files with 20% less peak RSS
		// and the same speed as the 1 MiB default (`lake bench write`).
		parquet.WithDictionaryPageSizeLimit(dictPageLimit),
		parquet.WithMaxRowGroupLength(o.RowGroupRows),
		parquet.WithVersion(parquet.V2_6),
		parquet.WithDataPageVersion(parquet.DataPageV1),
		parquet.WithCreatedBy("lake (arrow-go parquet)"),
	}
	// Microsecond timestamps are nearly all distinct: a dictionary would only cost memory (a hash
	// table per open file) until the writer falls back to plain encoding.
	for _, path := range lay.timestampPaths() {
		props = append(props, parquet.WithDictionaryFor(path, false))
	}
	fw := &FileWriter{
		bucket:   bucket,
		opts:     o,
		lay:      lay,
		infix:    infix,
		props:    parquet.NewWriterProperties(props...),
		propList: props,
		dictCols: dictColumns(lay.file),
		// Microsecond timestamps stay INT64 TIMESTAMP(MICROS); no INT96, no nanoseconds.
		aprops: pqarrow.NewArrowWriterProperties(
			pqarrow.WithAllocator(o.Allocator),
			pqarrow.WithCoerceTimestamps(arrow.Microsecond),
			pqarrow.WithDeprecatedInt96Timestamps(false),
		),
	}
	fw.mu.open = map[string]*partWriter{}
	fw.mu.cancels = map[*partWriter]context.CancelFunc{}
	return fw, nil
}

// zstdLevel is the zstd level of data files: 1 (klauspost/compress's SpeedFastest) rather than
// the codec's default 3 (SpeedDefault, the level of Spark and DuckDB). On interaction rows
// (`lake bench write`: 30 date partitions, dictionary-encoded strings) level 1 halves the CPU
// time spent in zstd (0.81 s -> 0.36 s of about 6 s of CPU for 2M rows, so about 7% of the
// write), for files 3.2% larger (10M rows: 122.8 MB -> 126.8 MB; 2M rows: +3.1%). Dictionary
// pages and indices compress nearly as well at both levels.
const zstdLevel = 1

// compressionLevel is the level for codec name: zstdLevel for zstd, the codec's default otherwise.
func compressionLevel(name string) int {
	if name == "zstd" {
		return zstdLevel
	}
	return compress.DefaultCompressionLevel
}

// Schema is the Arrow schema of the records Write takes best: the table's columns under their
// logical names, partition columns included, with the engine's Arrow types. Records may differ
// as the Writer documents (column order, missing nullable columns, widening types).
func (fw *FileWriter) Schema() *arrow.Schema { return fw.lay.input }

// tableSchema is the logical schema the FileWriter writes.
func (fw *FileWriter) tableSchema() *txlog.StructType { return fw.lay.schema }

// columnMapping reports whether the table maps columns (mode name or id).
func (fw *FileWriter) columnMapping() bool { return fw.lay.mapping != "none" }

// partitionColumns are the table's partition columns, in order.
func (fw *FileWriter) partitionColumns() []partCol { return fw.lay.parts }

// setAccept makes Write vet the partition values of each new partition with accept before any
// of a record's rows are written (OverwriteWhere); nil accepts all.
func (fw *FileWriter) setAccept(accept func(pv map[string]*string) error) { fw.accept = accept }

// failed reports whether the FileWriter failed (its error is sticky).
func (fw *FileWriter) failed() bool { return fw.err != nil }

// Files returns the add actions of the files finished so far.
func (fw *FileWriter) Files() []txlog.Add {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return slices.Clone(fw.mu.done)
}

// Write writes the rows of rec. It conforms rec to the table and splits it by partition before
// it returns, then queues the rows for encoding in the background, so that the caller prepares
// its next record while the previous ones are encoded; the queue holds at most queueDepth
// records, and Write waits when it is full. What is queued keeps references to rec's buffers
// (retained, released once encoded): the caller may release rec when Write returns.
//
// A *SchemaError (or a partition refused by the writer) leaves the FileWriter usable and writes
// none of rec's rows. Any other error fails the FileWriter, whose open files are then abandoned;
// an error of the background encoding is returned by the next Write or by Close. Cancelling ctx
// while Write runs fails the FileWriter, the encoding of earlier records included.
func (fw *FileWriter) Write(ctx context.Context, rec arrow.RecordBatch) error {
	return fw.write(ctx, rec, false)
}

// writeConformed is Write for a record conform returned (by this FileWriter, or by one with the
// same layout): it is not conformed again. The caller keeps its reference to conf.
func (fw *FileWriter) writeConformed(ctx context.Context, conf arrow.RecordBatch) error {
	return fw.write(ctx, conf, true)
}

// conform returns rec arranged as the table's logical Arrow schema (see conformRecord); the
// caller releases it.
func (fw *FileWriter) conform(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	return conformRecord(ctx, fw.opts.Allocator, rec, fw.lay.schema, fw.lay.input)
}

func (fw *FileWriter) write(ctx context.Context, rec arrow.RecordBatch, conformed bool) (err error) {
	if err := fw.usable(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fw.fail(ctx, err)
	}
	if err := fw.bg.failure(); err != nil {
		return fw.fail(ctx, err)
	}
	if rec.NumRows() == 0 {
		return nil
	}
	if fw.bg == nil {
		fw.bg = fw.startEncoder(ctx)
	}
	bg := fw.bg
	stop := context.AfterFunc(ctx, func() { fw.cancelAll(bg) })
	defer func() {
		if !stop() && err == nil && fw.err == nil {
			err = fw.fail(ctx, ctx.Err()) // cancelled after the rows were queued
		}
	}()
	conf := rec
	if !conformed {
		if conf, err = fw.conform(ctx, rec); err != nil {
			return err
		}
		defer conf.Release()
	}
	groups, data, err := fw.split(ctx, conf)
	if err != nil {
		return err
	}
	if fw.accept != nil {
		for _, g := range groups {
			if err := fw.accept(g.pv); err != nil {
				data.Release()
				return err
			}
		}
	}
	if err := bg.queue(ctx, job{groups: groups, data: data}); err != nil {
		return fw.fail(ctx, err)
	}
	return nil
}

// queueDepth is how many split records wait for the encoder, besides the one it encodes. Two
// keep the encoder busy while the caller prepares the next record; each is one input record's
// rows (reordered by partition), so the queue costs at most three records of memory.
const queueDepth = 2

// job is one split record for the encoder: data holds the rows, groups the partitions.
type job struct {
	groups []group
	data   arrow.RecordBatch
}

// encoder is the goroutine that encodes the records Write queues into the open files, one
// record at a time, the partitions of each record in parallel (Options.Parallelism). It owns
// the open files while it runs: the FileWriter touches them only after drain.
type encoder struct {
	jobs   chan job
	done   chan struct{} // closed when the goroutine has returned
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	err    error // the first error; later jobs are dropped
	closed bool  // jobs is closed
}

// startEncoder starts the encoder goroutine. Its context keeps the values of ctx (the first
// Write's) but not its cancellation: a call's cancellation reaches it through cancelAll.
func (fw *FileWriter) startEncoder(ctx context.Context) *encoder {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e := &encoder{jobs: make(chan job, queueDepth), done: make(chan struct{}), ctx: ctx, cancel: cancel}
	go func() {
		defer close(e.done)
		for j := range e.jobs {
			if e.failure() == nil {
				if err := fw.encodeJob(e.ctx, j); err != nil {
					e.setErr(err)
				}
			}
			j.data.Release()
		}
	}()
	return e
}

func (e *encoder) setErr(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err == nil {
		e.err = err
	}
}

// failure is the first error of the background encoding, if any; nil for a nil encoder.
func (e *encoder) failure() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// queue hands j to the goroutine, waiting while the queue is full. On an error j is released.
func (e *encoder) queue(ctx context.Context, j job) error {
	select {
	case e.jobs <- j:
		return nil
	case <-ctx.Done():
		j.data.Release()
		return ctx.Err()
	case <-e.ctx.Done():
		j.data.Release()
		if err := e.failure(); err != nil {
			return err
		}
		return context.Cause(e.ctx)
	}
}

// drain waits for the queued jobs to be encoded and stops the goroutine; it returns the first
// error. With abandon, the queued jobs are dropped and the encoding in progress is stopped.
func (e *encoder) drain(abandon bool) error {
	if abandon {
		e.setErr(errAbandoned)
		e.cancel()
	}
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.jobs)
	}
	e.mu.Unlock()
	<-e.done
	e.cancel()
	return e.failure()
}

var errAbandoned = errors.New("write abandoned")

// cancelAll stops the background encoding of bg and aborts every upload in flight; it runs
// when the context of a call ends.
func (fw *FileWriter) cancelAll(bg *encoder) {
	bg.setErr(context.Canceled)
	bg.cancel()
	fw.cancelUploads()
}

// drainEncoder waits for the encoder to finish the queued records and stops it. Afterwards the
// FileWriter owns the open files again; the next Write starts another encoder.
func (fw *FileWriter) drainEncoder(ctx context.Context) error {
	bg := fw.bg
	if bg == nil {
		return nil
	}
	stop := context.AfterFunc(ctx, func() { fw.cancelAll(bg) })
	defer stop()
	err := bg.drain(false)
	fw.bg = nil
	if err == nil {
		err = ctx.Err()
	}
	return err
}

func (fw *FileWriter) encodeJob(ctx context.Context, j job) error {
	if fw.encodeHook != nil {
		if err := fw.encodeHook(ctx); err != nil {
			return err
		}
	}
	return fw.encode(ctx, j.groups, j.data)
}

// encode writes the rows of one split record into the open files: in waves of at most
// MaxOpenFiles partitions, it opens their files, then encodes them in parallel.
func (fw *FileWriter) encode(ctx context.Context, groups []group, data arrow.RecordBatch) error {
	fw.jobs++
	ref := &jobRef{seq: fw.jobs, bytes: recordBytes(data), rows: data.NumRows()}
	for len(groups) > 0 {
		wave := groups[:min(len(groups), fw.opts.MaxOpenFiles)]
		groups = groups[len(wave):]
		inWave := make(map[string]bool, len(wave))
		for _, g := range wave {
			inWave[g.key] = true
		}
		pws := make([]*partWriter, len(wave))
		for i, g := range wave {
			var err error
			if pws[i], err = fw.partition(ctx, g, inWave); err != nil {
				return err
			}
		}
		var eg errgroup.Group
		eg.SetLimit(fw.opts.Parallelism)
		for i, g := range wave {
			eg.Go(func() error { return fw.writeGroup(ctx, g, pws[i], data, ref) })
		}
		if err := eg.Wait(); err != nil {
			return err
		}
	}
	if err := fw.bound(); err != nil {
		return err
	}
	return ctx.Err()
}

func (fw *FileWriter) usable() error {
	switch {
	case fw.err != nil:
		return fw.err
	case fw.closed:
		return ErrClosed
	}
	return nil
}

// group is the rows of one partition in a record: data rows [start, end).
type group struct {
	dir        string // the partition folder
	key        string // the serialised partition values: identifies the partition and its open file
	pv         map[string]*string
	start, end int64
}

// split groups conf's rows by partition. data holds the data columns under the file schema,
// with each group's rows contiguous. The caller releases data.
func (fw *FileWriter) split(ctx context.Context, conf arrow.RecordBatch) ([]group, arrow.RecordBatch, error) {
	n := conf.NumRows()
	cols := make([]arrow.Array, len(fw.lay.data))
	for i, pos := range fw.lay.data {
		cols[i] = retype(conf.Column(pos), fw.lay.physical[i])
	}
	data := array.NewRecordBatch(fw.lay.file, cols, n)
	for _, c := range cols {
		c.Release()
	}
	if len(fw.lay.parts) == 0 {
		return []group{{pv: map[string]*string{}, end: n}}, data, nil
	}

	// A key per row: the partition columns' values, bytewise.
	keyFns := make([]func([]byte, int) []byte, len(fw.lay.parts))
	for j, pc := range fw.lay.parts {
		keyFns[j] = keyFunc(conf.Column(pc.pos))
	}
	ids := make([]int32, n)
	index := map[string]int32{}
	var firsts []int
	var key []byte
	for i := range int(n) {
		key = key[:0]
		for _, f := range keyFns {
			key = f(key, i)
		}
		id, ok := index[string(key)]
		if !ok {
			id = int32(len(firsts))
			index[string(key)] = id
			firsts = append(firsts, i)
		}
		ids[i] = id
	}
	// Distinct keys can serialise alike ("" and null are both null): one group per serialised
	// partition values. Distinct values can share a folder (a null and the string
	// "__HIVE_DEFAULT_PARTITION__" both go to k=__HIVE_DEFAULT_PARTITION__): they stay separate
	// groups, so separate files, because add.partitionValues, not the folder, is the value.
	groups := make([]group, 0, len(firsts))
	remap := make([]int32, len(firsts))
	byKey := map[string]int32{}
	var pkey []byte
	for g, row := range firsts {
		pv := make(map[string]*string, len(fw.lay.parts))
		dir := ""
		pkey = pkey[:0]
		for _, pc := range fw.lay.parts {
			col := conf.Column(pc.pos)
			v, err := partitionValue(col, row, pc.typ)
			if err != nil {
				data.Release()
				return nil, nil, &SchemaError{Column: pc.name, TableType: typeString(pc.typ), Problem: err.Error()}
			}
			if v == nil && !col.IsNull(row) && !fw.lay.schema.Fields[pc.pos].Nullable {
				// The protocol serialises "" as a null partition value ("An empty string for any
				// type translates to a null partition value"), so a NOT NULL column cannot hold
				// it: refuse the record rather than commit a row that reads back as null.
				data.Release()
				return nil, nil, &SchemaError{Column: pc.name, TableType: typeString(pc.typ),
					Problem: "an empty string cannot be a value of a NOT NULL partition column: the Delta protocol stores an empty partition value as null"}
			}
			pv[pc.phys] = v
			if dir != "" {
				dir += "/"
			}
			dir += partval.PartitionSegment(pc.phys, v)
			if v == nil {
				pkey = append(pkey, 0)
			} else {
				pkey = binary.AppendUvarint(append(pkey, 1), uint64(len(*v)))
				pkey = append(pkey, *v...)
			}
		}
		id, ok := byKey[string(pkey)]
		if !ok {
			id = int32(len(groups))
			byKey[string(pkey)] = id
			groups = append(groups, group{dir: dir, key: string(pkey), pv: pv})
		}
		remap[g] = id
	}
	if len(groups) < len(firsts) {
		for i, id := range ids {
			ids[i] = remap[id]
		}
	}
	if len(groups) == 1 {
		groups[0].end = n
		return groups, data, nil
	}
	// Counting sort of the rows by group, unless each group's rows are contiguous already.
	counts := make([]int64, len(groups))
	contiguous := true
	for i, id := range ids {
		counts[id]++
		if i > 0 && id != ids[i-1] && counts[id] > 1 {
			contiguous = false
		}
	}
	if contiguous {
		for i := int64(0); i < n; {
			j := i
			for j < n && ids[j] == ids[i] {
				j++
			}
			groups[ids[i]].start, groups[ids[i]].end = i, j
			i = j
		}
		return groups, data, nil
	}
	var off int64
	for g := range groups {
		groups[g].start, groups[g].end = off, off+counts[g]
		off += counts[g]
	}
	next := make([]int64, len(groups))
	for g := range groups {
		next[g] = groups[g].start
	}
	perm := make([]int32, n)
	for i, id := range ids {
		perm[next[id]] = int32(i)
		next[id]++
	}
	taken := make([]arrow.Array, data.NumCols())
	for i, c := range data.Columns() {
		t, err := gather(ctx, fw.opts.Allocator, c, perm)
		if err != nil {
			for _, x := range taken[:i] {
				x.Release()
			}
			data.Release()
			return nil, nil, fmt.Errorf("reorder rows by partition: %w", err)
		}
		taken[i] = t
	}
	data.Release()
	sorted := array.NewRecordBatch(fw.lay.file, taken, n)
	for _, t := range taken {
		t.Release()
	}
	return groups, sorted, nil
}

// keyFunc returns a function appending row i's value of arr to a partition key.
func keyFunc(arr arrow.Array) func([]byte, int) []byte {
	switch a := arr.(type) {
	case *array.Date32:
		vals := a.Date32Values()
		return func(b []byte, i int) []byte {
			if arr.IsNull(i) {
				return append(b, 0)
			}
			return binary.LittleEndian.AppendUint32(append(b, 1), uint32(vals[i]))
		}
	case *array.Int64:
		vals := a.Int64Values()
		return func(b []byte, i int) []byte {
			if arr.IsNull(i) {
				return append(b, 0)
			}
			return binary.LittleEndian.AppendUint64(append(b, 1), uint64(vals[i]))
		}
	case *array.Int32:
		vals := a.Int32Values()
		return func(b []byte, i int) []byte {
			if arr.IsNull(i) {
				return append(b, 0)
			}
			return binary.LittleEndian.AppendUint32(append(b, 1), uint32(vals[i]))
		}
	case *array.String:
		return func(b []byte, i int) []byte {
			if arr.IsNull(i) {
				return append(b, 0)
			}
			s := a.Value(i)
			b = binary.AppendUvarint(append(b, 1), uint64(len(s)))
			return append(b, s...)
		}
	}
	return func(b []byte, i int) []byte {
		if arr.IsNull(i) {
			return append(b, 0)
		}
		s := arr.ValueStr(i)
		b = binary.AppendUvarint(append(b, 1), uint64(len(s)))
		return append(b, s...)
	}
}

// partitionValue serialises row i of arr, a partition column of type t.
func partitionValue(arr arrow.Array, i int, t txlog.DataType) (*string, error) {
	if arr.IsNull(i) {
		return nil, nil
	}
	var v any
	switch a := arr.(type) {
	case *array.String:
		v = a.Value(i)
	case *array.Int64:
		v = a.Value(i)
	case *array.Int32:
		v = a.Value(i)
	case *array.Int16:
		v = a.Value(i)
	case *array.Int8:
		v = a.Value(i)
	case *array.Float32:
		v = a.Value(i)
	case *array.Float64:
		v = a.Value(i)
	case *array.Boolean:
		v = a.Value(i)
	case *array.Binary:
		v = a.Value(i)
	case *array.Date32:
		v = int32(a.Value(i))
	case *array.Timestamp:
		v = time.UnixMicro(int64(a.Value(i))).UTC()
	case *array.Decimal128:
		v = a.Value(i)
	default:
		return nil, fmt.Errorf("cannot be a partition column (Arrow type %s)", arr.DataType())
	}
	return partval.Format(v, t)
}

// writeGroup adds the rows of one partition to pw's open row group, encoding the row group when
// it is complete and rolling to a new file at the target size. It runs in parallel with the other
// partitions of a record.
func (fw *FileWriter) writeGroup(ctx context.Context, g group, pw *partWriter, data arrow.RecordBatch, ref *jobRef) error {
	for off := g.start; off < g.end; {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(off+fw.opts.RowGroupRows-pw.pendingRows, g.end)
		pw.add(data, ref, off, end)
		if pw.pendingRows >= fw.opts.RowGroupRows || pw.pendingSize() >= fw.opts.RowGroupBytes {
			if err := pw.flushRowGroup(); err != nil {
				return fmt.Errorf("write data file %s: %w", pw.key, err)
			}
		}
		if pw.size() >= fw.opts.TargetFileSize {
			if err := fw.finish(pw); err != nil {
				return err
			}
			if end < g.end {
				var err error
				if pw, err = fw.openFile(ctx, g, pw.used); err != nil {
					return err
				}
			}
		}
		off = end
	}
	return nil
}

// partition returns the open file of g's partition, opening one. When MaxOpenFiles files are
// open, it first finishes the least recently used one that is not in keep.
func (fw *FileWriter) partition(ctx context.Context, g group, keep map[string]bool) (*partWriter, error) {
	fw.clock++
	fw.mu.Lock()
	pw := fw.mu.open[g.key]
	n := len(fw.mu.open)
	var lru *partWriter
	if pw == nil && n >= fw.opts.MaxOpenFiles {
		for _, p := range fw.mu.open {
			if !keep[p.pkey] && (lru == nil || p.used < lru.used) {
				lru = p
			}
		}
	}
	fw.mu.Unlock()
	if pw != nil {
		pw.used = fw.clock
		return pw, nil
	}
	if lru != nil {
		if err := fw.finish(lru); err != nil {
			return nil, err
		}
	}
	return fw.openFile(ctx, g, fw.clock)
}

// openFile starts a new data file for g's partition.
func (fw *FileWriter) openFile(ctx context.Context, g group, used int64) (*partWriter, error) {
	fw.mu.Lock()
	seq := fw.mu.seq
	fw.mu.seq++
	fw.mu.Unlock()
	name := fmt.Sprintf("part-%05d-%s.c000%s.parquet", seq, uuid.NewString(), fw.infix)
	key := name
	if g.dir != "" {
		key = g.dir + "/" + name
	}
	// The upload outlives this call: it gets its own context, cancelled to abort it.
	uctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	bw, err := fw.bucket.NewWriter(uctx, key, &blob.WriterOptions{ContentType: "application/vnd.apache.parquet"})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("create data file %s: %w", key, err)
	}
	pw := &partWriter{fw: fw, pkey: g.key, key: key, pv: maps.Clone(g.pv), bw: bw, cancel: cancel, stats: newFileStats(fw.lay.stats), used: used}
	pw.sink = &sink{w: bufio.NewWriterSize(bw, 256<<10)}
	pw.plain = make([]bool, fw.lay.file.NumFields())
	fw.mu.Lock()
	fw.mu.keys = append(fw.mu.keys, key)
	fw.mu.cancels[pw] = cancel
	fw.mu.open[g.key] = pw
	fw.mu.Unlock()
	return pw, nil
}

// finish completes pw's file and records its add action.
func (fw *FileWriter) finish(pw *partWriter) error {
	return fw.finishAll(context.Background(), []*partWriter{pw})
}

// finishAll completes the files pws, at most Options.Parallelism at once (finishing a file
// encodes and compresses its last row group), and records their add actions in the order of pws,
// those of the files that succeed even when another fails (so Abort finds them). It returns the
// first error.
func (fw *FileWriter) finishAll(ctx context.Context, pws []*partWriter) error {
	fw.mu.Lock()
	for _, pw := range pws {
		if fw.mu.open[pw.pkey] == pw {
			delete(fw.mu.open, pw.pkey)
		}
	}
	fw.mu.Unlock()
	adds := make([]txlog.Add, len(pws))
	errs := make([]error, len(pws))
	finishOne := func(i int) {
		pw := pws[i]
		if err := ctx.Err(); err != nil {
			pw.abort()
			errs[i] = err
			return
		}
		adds[i], errs[i] = pw.finish()
		pw.cancel()
		if errs[i] != nil {
			errs[i] = fmt.Errorf("write data file %s: %w", pw.key, errs[i])
		}
	}
	if len(pws) == 1 {
		finishOne(0)
	} else {
		var wg sync.WaitGroup
		sem := make(chan struct{}, fw.opts.Parallelism)
		for i := range pws {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				finishOne(i)
			})
		}
		wg.Wait()
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	var first error
	for i, pw := range pws {
		delete(fw.mu.cancels, pw)
		if errs[i] != nil {
			if first == nil {
				first = errs[i]
			}
			continue
		}
		fw.mu.done = append(fw.mu.done, adds[i])
	}
	return first
}

// openFiles returns the open files, sorted by partition.
func (fw *FileWriter) openFiles() []*partWriter {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	out := make([]*partWriter, 0, len(fw.mu.open))
	for _, d := range slices.Sorted(maps.Keys(fw.mu.open)) {
		out = append(out, fw.mu.open[d])
	}
	return out
}

// bound keeps the memory of the open files under MaxBufferedBytes: the split records that the
// open row groups retain slices of (each counted once, whole) and the encoded pages the files
// buffer. Past the bound, it encodes the open row groups that hold the oldest records (in
// parallel, at most Options.Parallelism at once), until the records left fit in 3/4 of it.
func (fw *FileWriter) bound() error {
	open := fw.openFiles()
	held := map[*jobRef]bool{}
	var refs []*jobRef
	total := int64(0)
	for _, pw := range open {
		total += pw.buffered()
		for _, p := range pw.pending {
			if !held[p.ref] {
				held[p.ref] = true
				refs = append(refs, p.ref)
				total += p.ref.bytes
			}
		}
	}
	if total <= fw.opts.MaxBufferedBytes {
		return nil
	}
	slices.SortFunc(refs, func(a, b *jobRef) int { return cmp.Compare(a.seq, b.seq) })
	cutoff := int64(math.MinInt64)
	for _, r := range refs {
		if total <= fw.opts.MaxBufferedBytes/4*3 {
			break
		}
		total -= r.bytes
		cutoff = r.seq
	}
	var eg errgroup.Group
	eg.SetLimit(fw.opts.Parallelism)
	for _, pw := range open {
		if len(pw.pending) > 0 && pw.pending[0].ref.seq <= cutoff {
			eg.Go(func() error {
				if err := pw.flushRowGroup(); err != nil {
					return fmt.Errorf("write data file %s: %w", pw.key, err)
				}
				return nil
			})
		}
	}
	return eg.Wait()
}

// cancelUploads aborts every upload in flight; it runs when the context of a call ends.
func (fw *FileWriter) cancelUploads() {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for _, c := range fw.mu.cancels {
		c()
	}
}

// fail abandons the open files and makes err sticky.
func (fw *FileWriter) fail(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (%v)", ctxErr, err)
	}
	fw.abortOpen()
	fw.err = fmt.Errorf("writer failed: %w", err)
	return fw.err
}

// abortOpen stops the encoder (dropping what it has queued) and abandons the open files.
func (fw *FileWriter) abortOpen() {
	if fw.bg != nil {
		_ = fw.bg.drain(true)
		fw.bg = nil
	}
	fw.cancelUploads()
	for _, pw := range fw.openFiles() {
		pw.abort()
	}
	fw.mu.Lock()
	clear(fw.mu.open)
	clear(fw.mu.cancels)
	fw.mu.Unlock()
}

// Close waits for the queued records to be encoded, finishes the open files (in parallel, at
// most Options.Parallelism at once) and returns the add actions of every file written, in the
// order they were finished (the open files in partition order). Add.DataChange is true; compaction sets it to false.
func (fw *FileWriter) Close(ctx context.Context) ([]txlog.Add, error) {
	if err := fw.usable(); err != nil {
		return nil, err
	}
	if err := fw.drainEncoder(ctx); err != nil {
		return nil, fw.fail(ctx, err)
	}
	stop := context.AfterFunc(ctx, fw.cancelUploads)
	defer stop()
	if err := fw.finishAll(ctx, fw.openFiles()); err != nil {
		return nil, fw.fail(ctx, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fw.fail(ctx, err)
	}
	fw.closed = true
	return fw.Files(), nil
}

// closeOpen finishes the queued records and the open files and leaves the FileWriter usable.
func (fw *FileWriter) closeOpen() error {
	if err := fw.drainEncoder(context.Background()); err != nil {
		fw.abortOpen()
		fw.err = fmt.Errorf("writer failed: %w", err)
		return fw.err
	}
	if err := fw.finishAll(context.Background(), fw.openFiles()); err != nil {
		fw.abortOpen()
		fw.err = fmt.Errorf("writer failed: %w", err)
		return fw.err
	}
	return nil
}

// adopt takes over the files old wrote (after a schema change); old is closed.
func (fw *FileWriter) adopt(old *FileWriter) {
	old.mu.Lock()
	done, keys, seq := old.mu.done, old.mu.keys, old.mu.seq
	old.mu.done = nil
	old.mu.Unlock()
	old.closed = true
	fw.mu.Lock()
	fw.mu.done, fw.mu.keys, fw.mu.seq = done, keys, seq
	fw.mu.Unlock()
}

// Abort stops the background encoding (dropping the records still queued), abandons the open
// files and deletes the finished ones (best effort: they are not part of the table either way).
// It returns the first deletion error.
func (fw *FileWriter) Abort(ctx context.Context) error {
	fw.abortOpen()
	fw.closed = true
	var first error
	for _, a := range fw.Files() {
		if err := fw.bucket.Delete(ctx, partval.DecodeURIPath(a.Path)); err != nil && first == nil {
			first = err
		}
	}
	fw.mu.Lock()
	fw.mu.done = nil
	fw.mu.Unlock()
	return first
}

// Keys are the object keys of every data file this FileWriter started, finished or not.
func (fw *FileWriter) Keys() []string {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return slices.Clone(fw.mu.keys)
}

// partWriter is the open data file of one partition.
type partWriter struct {
	fw     *FileWriter
	pkey   string // group.key of its partition
	key    string // object key of the file
	pv     map[string]*string
	bw     *blob.Writer
	cancel context.CancelFunc // aborts the upload
	sink   *sink
	pq     *pqarrow.FileWriter // nil until the first row group is encoded
	stats  *fileStats
	used   int64 // LRU clock

	// The open row group: slices of split records, retained (see flushRowGroup).
	pending      []piece
	pendingRows  int64
	pendingBytes int64 // the slices' share of their records' bytes
	// plain marks the data columns written without dictionary in this file; dict is scratch
	// space for the dictionaries of row groups.
	plain []bool
	dict  map[string]int32
}

// sink counts the bytes of a file and buffers them in front of the upload.
type sink struct {
	w *bufio.Writer
	n int64
}

func (s *sink) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.n += int64(n)
	return n, err
}

// size estimates the file's size: what was encoded plus the open row group.
func (pw *partWriter) size() int64 {
	n := pw.pendingSize()
	if pw.pq != nil {
		n += pw.pq.TotalCompressedBytes()
	}
	return n
}

// buffered estimates the memory held by the encoded pages the file has not written out yet.
func (pw *partWriter) buffered() int64 {
	if pw.pq == nil {
		return 0
	}
	return pw.pq.RowGroupTotalCompressedBytes()
}

func (pw *partWriter) finish() (txlog.Add, error) {
	if err := pw.flushRowGroup(); err != nil {
		pw.abort()
		return txlog.Add{}, err
	}
	if pw.pq == nil { // no rows (not expected): an empty file
		var err error
		if pw.pq, err = pqarrow.NewFileWriter(pw.fw.lay.file, pw.sink, pw.fw.props, pw.fw.aprops); err != nil {
			pw.abort()
			return txlog.Add{}, err
		}
	}
	if err := pw.pq.Close(); err != nil {
		pw.abort()
		return txlog.Add{}, err
	}
	if err := pw.sink.w.Flush(); err != nil {
		pw.abort()
		return txlog.Add{}, err
	}
	if err := pw.bw.Close(); err != nil {
		return txlog.Add{}, err
	}
	if pw.sink.n > math.MaxInt64 {
		return txlog.Add{}, errors.New("file too large")
	}
	return txlog.Add{
		Path:             partval.EncodeURIPath(pw.key),
		PartitionValues:  pw.pv,
		Size:             pw.sink.n,
		ModificationTime: time.Now().UnixMilli(),
		DataChange:       true,
		Stats:            pw.stats.json(),
	}, nil
}

// abort abandons the file: the upload is cancelled before it is closed, so nothing becomes
// visible.
func (pw *partWriter) abort() {
	pw.cancel()
	pw.releasePending()
	if pw.pq != nil {
		_ = pw.pq.Close() // releases the buffers; the bytes go nowhere
	}
	_ = pw.bw.Close()
}
