package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/writer"
	"github.com/lakehouse/lake/writer/source"
)

func init() {
	register(&command{name: "ingest", summary: "standardise and append CSV, TSV, JSON and NDJSON files (bad records to quarantine)", run: runIngest})
}

// ingestFlags are lake ingest's flags.
type ingestFlags struct {
	format, mapFlag, mappingFile, typesFlag, tsFormat, timezone, sourceName, quarantine string
	delimiter, columns, idemKey, mode, minTime                                          string
	batchRows                                                                           int64
	maxBad                                                                              float64
	maxFuture                                                                           string
	mergeSchema, force, jsonOut, noHeader                                               bool
	replaceWhere                                                                        *listFlag
}

func runIngest(ctx context.Context, e *env, args []string) error {
	fs := newFlags("ingest", "URI FILE... [--format auto|csv|tsv|json|ndjson] [--map DST=SRC,...] [--mapping FILE] [--timestamp-format epoch_s|epoch_ms|epoch_us|rfc3339|LAYOUT] [--source NAME] [--quarantine URI] [--batch-rows N] [--json]", e)
	var f ingestFlags
	fs.StringVar(&f.format, "format", "auto", "auto (from the name, then the first bytes), csv, tsv, json or ndjson")
	fs.StringVar(&f.mapFlag, "map", "", "column mappings DST=SRC,... (SRC a field, a dotted path into JSON, or :constant)")
	fs.StringVar(&f.mappingFile, "mapping", "", "a JSON mapping file (fields, types, timestamp_format, timezone, source, properties)")
	fs.StringVar(&f.typesFlag, "types", "", "interaction type renames FROM=TO,... (pv=view,buy=purchase)")
	fs.StringVar(&f.tsFormat, "timestamp-format", "", "epoch_s, epoch_ms, epoch_us, rfc3339 or a Go layout (default: RFC 3339 strings; numbers need this flag)")
	fs.StringVar(&f.timezone, "timezone", "", "the zone of timestamps without an offset (IANA name; default UTC)")
	fs.StringVar(&f.sourceName, "source", "", "the source column's value (default: the mapping's source, else the file's name)")
	fs.StringVar(&f.quarantine, "quarantine", "", "the quarantine table (default: the sibling table URI_quarantine)")
	fs.StringVar(&f.delimiter, "delimiter", "", `CSV field separator (default: detected; "\t" for tab)`)
	fs.BoolVar(&f.noHeader, "no-header", false, "CSV files have no header line (name the columns with --columns)")
	fs.StringVar(&f.columns, "columns", "", "column names of header-less CSV files, comma-separated")
	fs.Int64Var(&f.batchRows, "batch-rows", 0, "commit every N records (default: one commit per file); ignored by overwrite and --replace-where, which are one commit")
	fs.Float64Var(&f.maxBad, "max-bad-fraction", 0.5, "fail when more than this fraction of a batch's records is quarantined (0 to 1)")
	fs.StringVar(&f.minTime, "min-time", "1990-01-01", "quarantine timestamps before this date (RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&f.maxFuture, "max-future", "1d", "quarantine timestamps more than this far in the future (a duration; 0 disables)")
	fs.StringVar(&f.mode, "mode", "append", "append or overwrite")
	f.replaceWhere = &listFlag{}
	fs.Var(f.replaceWhere, "replace-where", "replace the partitions matching COL OP VALUE (repeatable, ANDed) in one commit; rows outside them are refused")
	fs.BoolVar(&f.mergeSchema, "merge-schema", false, "tables other than the interaction table: add the input's new fields as string columns")
	fs.BoolVar(&f.force, "force", false, "ingest files again even if the table already has them")
	fs.StringVar(&f.idemKey, "idempotency-key", "", "a name that makes a stdin ingest idempotent (files use their content's hash)")
	fs.BoolVar(&f.jsonOut, "json", false, "print the counts as one JSON line on stdout")
	pos, err := parse(fs, args, 2, -1)
	if err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit: the garbage collector works harder as the heap nears it, instead of
		// letting it double (GOGC) past what a streaming ingest needs. 5M rows: 941 -> 749 MiB
		// peak RSS, and no slower.
		debug.SetMemoryLimit(ingestMemoryLimit)
	}
	return ingest(ctx, e, pos[0], pos[1:], &f)
}

// ingestMemoryLimit is lake ingest's soft memory limit unless GOMEMLIMIT sets one.
const ingestMemoryLimit = 768 << 20

// ingestSummary is what lake ingest prints (with --json, as one JSON line).
type ingestSummary struct {
	Files        int    `json:"files"`
	FilesSkipped int    `json:"files_skipped"`
	RowsRead     int64  `json:"rows_read"`
	RowsWritten  int64  `json:"rows_written"`
	Quarantined  int64  `json:"rows_quarantined"`
	Duplicate    int64  `json:"rows_duplicate"`
	Commits      int    `json:"commits"`
	Version      int64  `json:"version"`
	QuarantineV  *int64 `json:"quarantine_version,omitempty"`
}

func ingest(ctx context.Context, e *env, uri string, names []string, f *ingestFlags) error {
	mode, err := writer.ParseMode(f.mode)
	if err != nil {
		return usagef("--mode: %v", err)
	}
	var where []writer.PartitionPredicate
	for _, w := range f.replaceWhere.vals {
		p, err := writer.ParsePartitionPredicate(w)
		if err != nil {
			return usagef("--replace-where %q: %v", w, err)
		}
		where = append(where, p)
	}
	if len(where) > 0 {
		if f.mode != "append" {
			return usagef("--replace-where already implies the mode; drop --mode")
		}
		mode = writer.OverwriteWhere
	}
	if f.maxBad < 0 || f.maxBad > 1 {
		return usagef("--max-bad-fraction must be between 0 and 1")
	}
	if f.batchRows < 0 {
		return usagef("--batch-rows must be 0 or more")
	}
	stdin := 0
	for _, n := range names {
		if n == "-" {
			stdin++
		}
	}
	if stdin > 1 {
		return usagef("stdin (-) can be named once")
	}
	mapping := &source.Mapping{}
	if f.mappingFile != "" {
		if mapping, err = source.LoadMapping(f.mappingFile); err != nil {
			return usagef("%v", err)
		}
	}
	if f.mapFlag != "" {
		if err := mapping.ParseMap(f.mapFlag); err != nil {
			return usagef("%v", err)
		}
	}
	if f.typesFlag != "" {
		if err := mapping.ParseTypes(f.typesFlag); err != nil {
			return usagef("%v", err)
		}
	}
	minTime, err := parseTime(f.minTime)
	if err != nil {
		return usagef("--min-time %q: want RFC 3339 or YYYY-MM-DD", f.minTime)
	}
	maxFuture, err := parseDuration(f.maxFuture)
	if err != nil {
		return usagef("--max-future %q: %v", f.maxFuture, err)
	}
	if maxFuture == 0 {
		maxFuture = -1 // no bound
	}
	format := f.format
	if format == "auto" && mapping.Format != "" {
		format = mapping.Format
	}
	switch format {
	case "auto", "csv", "tsv", "json", "ndjson":
	default:
		return usagef("--format %q: want auto, csv, tsv, json or ndjson", format)
	}
	ro := source.ReadOptions{Format: format, Delimiter: mapping.Delimiter, Header: mapping.Header, Columns: mapping.Columns}
	if f.delimiter != "" {
		ro.Delimiter = f.delimiter
	}
	if f.noHeader {
		ro.Header = new(bool)
	}
	if f.columns != "" {
		ro.Columns = strings.Split(f.columns, ",")
	}

	t, err := openTable(ctx, uri)
	if err != nil {
		return err
	}
	defer t.Close()
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return err
	}
	qURI := f.quarantine
	if qURI == "" {
		if qURI, err = source.QuarantineURI(uri); err != nil {
			return usagef("%v; name one with --quarantine", err)
		}
	}
	params := map[string]any{}
	if f.sourceName != "" {
		params["source"] = f.sourceName
	}
	if f.mappingFile != "" {
		params["mapping"] = f.mappingFile
	}
	sink, err := source.OpenSink(ctx, t, qURI, &source.SinkOptions{Mode: mode, Where: where, MergeSchema: f.mergeSchema,
		OperationParameters: params})
	if err != nil {
		return usagef("%v", err)
	}
	defer sink.Close()
	var inputs []*source.Input
	defer func() {
		for _, in := range inputs {
			in.Close()
		}
	}()
	for _, n := range names {
		in, err := source.OpenInput(ctx, n)
		if err != nil {
			return ingestError(err)
		}
		inputs = append(inputs, in)
	}
	prog := newProgress(e.stderr)
	res, err := sink.Ingest(ctx, inputs, &source.IngestOptions{
		Standardize: source.Options{Schema: snap.Schema(), Mapping: mapping, Source: f.sourceName, TimestampFormat: f.tsFormat,
			Timezone: f.timezone, MinTime: minTime, MaxFuture: maxFuture, MergeSchema: f.mergeSchema},
		Read:           ro,
		BatchRows:      f.batchRows,
		MaxBadFraction: max(f.maxBad, 1e-12), // 0 means "none may be refused", not the default
		Force:          f.force,
		IdempotencyKey: f.idemKey,
		Progress: func(in *source.Input, bytesRead, records int64) {
			prog.bytes(in.Name, bytesRead, in.Size, records)
		},
	})
	prog.done()
	if err != nil {
		return ingestError(err)
	}
	s := ingestSummary{Files: res.Files, FilesSkipped: res.FilesSkipped, RowsRead: res.Read, RowsWritten: res.Written,
		Quarantined: res.Quarantined, Duplicate: res.Duplicate, Commits: res.Commits, Version: res.Version}
	if res.QuarantineVersion >= 0 {
		s.QuarantineV = &res.QuarantineVersion
	}
	if f.jsonOut {
		b, _ := json.Marshal(s)
		fmt.Fprintln(e.stdout, string(b))
		return nil
	}
	fmt.Fprintf(e.stdout, "ingested %d rows in %d commits (%d read, %d quarantined, %d duplicate", s.RowsWritten, s.Commits,
		s.RowsRead, s.Quarantined, s.Duplicate)
	if s.FilesSkipped > 0 {
		fmt.Fprintf(e.stdout, "; %d files already ingested", s.FilesSkipped)
	}
	fmt.Fprintf(e.stdout, "); table is at version %d", s.Version)
	if s.Quarantined > 0 {
		fmt.Fprintf(e.stdout, "; refused records are in %s", qURI)
	}
	fmt.Fprintln(e.stdout)
	return nil
}

// ingestError makes a source.ConfigError a usage error (exit 2) naming what to change.
func ingestError(err error) error {
	var ce *source.ConfigError
	if errors.As(err, &ce) {
		var ie *source.IngestError
		if errors.As(err, &ie) {
			return usagef("%s: %v", ie.Input, ce)
		}
		return usagef("%v", err)
	}
	if errors.Is(err, source.ErrTooManyBad) {
		return fmt.Errorf("%w; see the reasons in the quarantine table, or raise --max-bad-fraction to accept such a file", err)
	}
	return err
}

// parseDuration reads a duration flag: jobs.ParseDuration's forms (Go's, plus d and w), with ""
// and "0" meaning zero; negative durations are refused.
func parseDuration(s string) (time.Duration, error) {
	if s = strings.TrimSpace(s); s == "" || s == "0" {
		return 0, nil
	}
	d, err := jobs.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration such as 90m, 36h, 7d or 2w")
	}
	return d, nil
}
