package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lakehouse/lake/internal/rowfmt"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
)

func init() {
	register(&command{name: "cat", summary: "print the rows of a snapshot", run: runCat})
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
	limit := &nonNegFlag{want: "--limit takes 0 (all rows) or a positive number of rows"}
	fs.Var(limit, "limit", "print at most `N` rows (0: all)")
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
	opts.Limit = limit.n
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
