package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/csv"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/internal/rowfmt"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer"
)

func init() {
	register(&command{name: "cat", summary: "print the rows of a snapshot", run: runCat})
	register(&command{name: "ingest", summary: "append files that have the table's schema (CSV, JSON, NDJSON)", run: runIngest})
	register(&command{name: "bench", summary: "benchmarks: bench scan URI | bench write URI", run: runBench})
}

// scanFlags are the flags cat and bench share.
type scanFlags struct {
	columns *listFlag
	where   *listFlag
}

func addScanFlags(fsAdd func(v flagValue, name, usage string)) *scanFlags {
	s := &scanFlags{columns: &listFlag{split: true}, where: &listFlag{}}
	fsAdd(s.columns, "columns", "columns to print, comma-separated (default: all)")
	fsAdd(s.where, "where", "a filter COL OP VALUE with OP one of = != < <= > >= in (repeatable, ANDed)")
	return s
}

type flagValue interface {
	String() string
	Set(string) error
}

func (s *scanFlags) options() (*reader.ScanOptions, error) {
	o := &reader.ScanOptions{Columns: s.columns.vals}
	for _, w := range s.where.vals {
		f, err := reader.ParseFilter(w)
		if err != nil {
			return nil, usagef("--where %q: %v", w, err)
		}
		o.Filters = append(o.Filters, f)
	}
	return o, nil
}

// scanError turns the reader's errors about the command line into usage errors.
func scanError(err error) error {
	if errors.Is(err, reader.ErrInvalidFilter) || errors.Is(err, reader.ErrUnknownColumn) {
		return usagef("%v", err)
	}
	return err
}

// openScan opens the table at uri, loads the snapshot the flags select and plans a scan of it.
// The caller closes the table.
func openScan(ctx context.Context, uri string, sf *snapshotFlags, opts *reader.ScanOptions) (*table.Table, *reader.Scan, error) {
	t, err := openTable(ctx, uri)
	if err != nil {
		return nil, nil, err
	}
	snap, err := sf.load(ctx, t)
	if err == nil {
		var scan *reader.Scan
		if scan, err = reader.NewScan(ctx, t, snap, opts); err == nil {
			return t, scan, nil
		}
		err = scanError(err)
	}
	t.Close()
	return nil, nil, err
}

func runCat(ctx context.Context, e *env, args []string) error {
	fs := newFlags("cat", "URI [--version N | --timestamp RFC3339] [--columns A,B] [--where EXPR]... [--format jsonl|csv|table] [--limit N]", e)
	sf := addSnapshotFlags(fs, true)
	scf := addScanFlags(func(v flagValue, n, u string) { fs.Var(v, n, u) })
	format := fs.String("format", "table", "jsonl, csv or table")
	limit := fs.Int64("limit", 0, "print at most N rows (0: all)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *format != "jsonl" && *format != "csv" && *format != "table" {
		return usagef("--format %q: want jsonl, csv or table", *format)
	}
	opts, err := scf.options()
	if err != nil {
		return err
	}
	opts.Limit = *limit
	t, scan, err := openScan(ctx, pos[0], sf, opts)
	if err != nil {
		return err
	}
	defer t.Close()
	out := newBufWriter(e.stdout)
	rw, err := rowfmt.NewWriter(out, *format, scan.Schema())
	if err != nil {
		return err
	}
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			return scanError(err)
		}
		if err := rw.Write(rec); err != nil {
			return err
		}
	}
	if err := rw.Flush(); err != nil {
		return err
	}
	return out.Flush()
}

func runBench(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "write" {
		return runBenchWrite(ctx, e, args[1:])
	}
	if len(args) == 0 || args[0] != "scan" {
		return usagef("usage: lake bench scan URI [--columns A,B] [--where EXPR]... | lake bench write URI [--rows N] [--days D]")
	}
	fs := newFlags("bench scan", "URI [--version N] [--columns A,B] [--where EXPR]...", e)
	sf := addSnapshotFlags(fs, false)
	scf := addScanFlags(func(v flagValue, n, u string) { fs.Var(v, n, u) })
	pos, err := parse(fs, args[1:], 1, 1)
	if err != nil {
		return err
	}
	opts, err := scf.options()
	if err != nil {
		return err
	}
	start := time.Now()
	t, scan, err := openScan(ctx, pos[0], sf, opts)
	if err != nil {
		return err
	}
	defer t.Close()
	var rows int64
	for rec, err := range scan.Records(ctx) {
		if err != nil {
			return scanError(err)
		}
		rows += rec.NumRows()
	}
	m := scan.Metrics()
	out := map[string]any{"rows": rows, "files": m.FilesRead, "bytes": m.BytesRead,
		"seconds": time.Since(start).Seconds(), "files_pruned": m.FilesPrunedByPartition,
		"files_skipped": m.FilesSkippedByStats, "row_groups_skipped": m.RowGroupsSkipped}
	b, _ := json.Marshal(out)
	fmt.Fprintln(e.stdout, string(b))
	return nil
}

func runIngest(ctx context.Context, e *env, args []string) error {
	fs := newFlags("ingest", "URI FILE... [--format auto|csv|json|ndjson] [--batch-rows N] [--mode append|overwrite] [--replace-where EXPR]... [--merge-schema]", e)
	format := fs.String("format", "auto", "auto (by extension), csv, json or ndjson")
	batchRows := fs.Int64("batch-rows", 0, "commit every N rows (default: one commit per call)")
	mode := fs.String("mode", "append", "append or overwrite")
	mergeSchema := fs.Bool("merge-schema", false, "add new nullable columns found in the input to the table")
	source := fs.String("source", "", "a name for this writer, recorded in commitInfo")
	replaceWhere := &listFlag{}
	fs.Var(replaceWhere, "replace-where", "replace the partitions matching COL OP VALUE on partition columns (repeatable, ANDed); rows outside them are refused")
	pos, err := parse(fs, args, 2, -1)
	if err != nil {
		return err
	}
	switch *format {
	case "auto", "csv", "json", "ndjson":
	default:
		return usagef("--format %q: want auto, csv, json or ndjson", *format)
	}
	if *batchRows < 0 {
		return usagef("--batch-rows must be positive")
	}
	m, err := writer.ParseMode(*mode)
	if err != nil {
		return usagef("--mode: %v", err)
	}
	var where []writer.PartitionPredicate
	for _, w := range replaceWhere.vals {
		p, err := writer.ParsePartitionPredicate(w)
		if err != nil {
			return usagef("--replace-where %q: %v", w, err)
		}
		where = append(where, p)
	}
	if len(where) > 0 {
		if *mode != "append" {
			return usagef("--replace-where already implies the mode; drop --mode")
		}
		m = writer.OverwriteWhere
	}
	t, err := openTable(ctx, pos[0])
	if err != nil {
		return err
	}
	defer t.Close()
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return err
	}
	schema, err := deltaarrow.Schema(snap.Schema())
	if err != nil {
		return err
	}
	params := map[string]any{}
	if *source != "" {
		params["source"] = *source
	}
	newWriter := func(first bool) (*writer.Writer, error) {
		wm, wh := m, where
		if !first {
			wm, wh = writer.Append, nil
			// Catch up by reading only the commits since the last batch, not the whole log.
			if snap, err = t.Update(ctx, snap); err != nil {
				return nil, err
			}
		}
		return writer.New(ctx, t, &writer.Options{Mode: wm, Where: wh, MergeSchema: *mergeSchema,
			OperationParameters: params, Snapshot: snap})
	}
	w, err := newWriter(true)
	if err != nil {
		return err
	}
	var total, pending, commits int64
	var lastVersion int64 = -1
	flush := func() error {
		res, err := w.Close(ctx)
		if err != nil {
			return err
		}
		if res.Committed {
			commits++
			lastVersion = res.Version
		}
		pending = 0
		return nil
	}
	progress := newProgress(e.stderr)
	for _, file := range pos[1:] {
		f := *format
		if f == "auto" {
			f = formatByExt(file)
		}
		err := readRecords(file, f, schema, *batchRows, func(rec arrow.RecordBatch) error {
			if err := w.Write(ctx, rec); err != nil {
				return err
			}
			total += rec.NumRows()
			pending += rec.NumRows()
			progress.update(total, commits)
			if *batchRows > 0 && pending >= *batchRows {
				if err := flush(); err != nil {
					return err
				}
				if w, err = newWriter(false); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			_ = w.Abort(ctx)
			return fmt.Errorf("%s: %w (%d rows were committed before it in %d commits)", file, err, total-pending, commits)
		}
	}
	if pending > 0 || commits == 0 {
		if err := flush(); err != nil {
			return err
		}
	} else {
		_ = w.Abort(ctx)
	}
	progress.done()
	fmt.Fprintf(e.stdout, "ingested %d rows in %d commits", total, commits)
	if lastVersion >= 0 {
		fmt.Fprintf(e.stdout, "; table is at version %d", lastVersion)
	}
	fmt.Fprintln(e.stdout)
	return nil
}

func formatByExt(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv", ".tsv":
		return "csv"
	case ".json":
		return "json"
	}
	return "ndjson"
}

// readRecords decodes a file in the table's schema into Arrow records of at most chunk rows
// (0: 64k) and calls fn for each; fn does not keep the record.
func readRecords(path, format string, schema *arrow.Schema, chunk int64, fn func(arrow.RecordBatch) error) error {
	if chunk <= 0 || chunk > 65536 {
		chunk = 65536
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r interface {
		Next() bool
		RecordBatch() arrow.RecordBatch
		Err() error
		Release()
	}
	switch format {
	case "csv":
		r = csv.NewReader(f, schema, csv.WithHeader(true), csv.WithChunk(int(chunk)), csv.WithNullReader(true, ""))
	case "json", "ndjson":
		src, err := normaliseJSON(f, format, schema)
		if err != nil {
			return err
		}
		r = array.NewJSONReader(src, schema, array.WithChunk(int(chunk)))
	}
	defer r.Release()
	for r.Next() {
		if err := fn(r.RecordBatch()); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("cannot read it as %s in the table's schema: %w", format, err)
	}
	return nil
}

// normaliseJSON turns a JSON array or NDJSON into NDJSON that Arrow's JSON reader takes: map
// columns given as JSON objects become key/value lists.
func normaliseJSON(f io.Reader, format string, schema *arrow.Schema) (io.Reader, error) {
	var maps []string
	for _, fld := range schema.Fields() {
		if fld.Type.ID() == arrow.MAP {
			maps = append(maps, fld.Name)
		}
	}
	br := bufio.NewReaderSize(f, 1<<20)
	first, _ := br.Peek(64)
	isArray := len(bytes.TrimSpace(first)) > 0 && bytes.TrimSpace(first)[0] == '['
	if !isArray && len(maps) == 0 {
		return br, nil
	}
	var out bytes.Buffer
	emit := func(raw json.RawMessage, n int) error {
		if len(maps) == 0 {
			out.Write(raw)
			out.WriteByte('\n')
			return nil
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return fmt.Errorf("record %d is not a JSON object: %w", n, err)
		}
		for _, m := range maps {
			v, ok := obj[m]
			if !ok || len(v) == 0 || v[0] != '{' {
				continue
			}
			var kv map[string]any
			if err := json.Unmarshal(v, &kv); err != nil {
				return fmt.Errorf("record %d: column %s: %w", n, m, err)
			}
			list := make([]map[string]any, 0, len(kv))
			for k, val := range kv {
				if val != nil {
					if _, isStr := val.(string); !isStr {
						b, _ := json.Marshal(val)
						val = string(b)
					}
				}
				list = append(list, map[string]any{"key": k, "value": val})
			}
			obj[m], _ = json.Marshal(list)
		}
		b, _ := json.Marshal(obj)
		out.Write(b)
		out.WriteByte('\n')
		return nil
	}
	dec := json.NewDecoder(br)
	if isArray {
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
	}
	for n := 1; ; n++ {
		if isArray && !dec.More() {
			break
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("record %d is not valid JSON: %w", n, err)
		}
		if err := emit(raw, n); err != nil {
			return nil, err
		}
	}
	return &out, nil
}

// progress prints periodic counts on a terminal.
type progress struct {
	w     io.Writer
	tty   bool
	last  time.Time
	shown bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(rows, commits int64) {
	if !p.tty || time.Since(p.last) < 500*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.shown = true
	fmt.Fprintf(p.w, "\r%d rows, %d commits", rows, commits)
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}
