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
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

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
