package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/google/uuid"

	"github.com/lakehouse/lake/internal/storage"
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
	return ingest(ctx, e, pos[0], pos[1:], &f)
}

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

// ingestRun is one lake ingest call.
type ingestRun struct {
	e       *env
	f       *ingestFlags
	sink    *source.Sink
	sopts   source.Options
	ropts   source.ReadOptions
	overall ingestSummary
	prog    *progress
	params  map[string]any
	reasons []string // the first few quarantine reasons, for error messages
}

func ingest(ctx context.Context, e *env, uri string, inputs []string, f *ingestFlags) error {
	if f.batchRows < 0 {
		return usagef("--batch-rows must be 0 or more")
	}
	if f.maxBad < 0 || f.maxBad > 1 {
		return usagef("--max-bad-fraction must be between 0 and 1")
	}
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
	stdin := 0
	for _, in := range inputs {
		if in == "-" {
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
		maxFuture = -1
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
	delim := f.delimiter
	if delim == "" {
		delim = mapping.Delimiter
	}
	header := mapping.Header
	if f.noHeader {
		no := false
		header = &no
	}
	cols := mapping.Columns
	if f.columns != "" {
		cols = strings.Split(f.columns, ",")
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
	r := &ingestRun{e: e, f: f, sink: sink, prog: newProgress(e.stderr), params: params}
	r.sopts = source.Options{Schema: snap.Schema(), Mapping: mapping, Source: f.sourceName, TimestampFormat: f.tsFormat,
		Timezone: f.timezone, MinTime: minTime, MaxFuture: maxFuture, MergeSchema: f.mergeSchema, Seen: source.NewSeen()}
	r.ropts = source.ReadOptions{Format: format, Delimiter: delim, Header: header, Columns: cols}
	if std, err := source.NewStandardizer(&r.sopts); err != nil { // check the options once, before any input
		return usagef("%v", err)
	} else {
		std.Close()
	}
	r.overall.Version = snap.Version()

	if mode != writer.Append {
		err = r.ingestOverwrite(ctx, inputs)
	} else {
		for _, in := range inputs {
			if err = r.ingestFile(ctx, in); err != nil {
				break
			}
		}
	}
	r.prog.done()
	if err != nil {
		return err
	}
	s := r.overall
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

// input is one opened input with its fingerprint.
type input struct {
	name  string
	open  func(ctx context.Context) (io.ReadCloser, error)
	size  int64
	appID string // "" when the input has no fingerprint (stdin without --idempotency-key)
}

// openInput names the input's fingerprint: a hash of its bytes (read once before ingesting), or
// of --idempotency-key for stdin. It also refuses, before anything is committed, a JSON array
// whose last byte is not ']' (a truncated file or trailing data).
func (r *ingestRun) openInput(ctx context.Context, name string) (*input, error) {
	in := &input{name: name}
	if name == "-" {
		in.open = func(context.Context) (io.ReadCloser, error) { return io.NopCloser(os.Stdin), nil }
		if r.f.idemKey != "" {
			in.appID = "lake-ingest-key-" + r.f.idemKey
		}
		return in, nil
	}
	if strings.Contains(name, "://") {
		u, err := url.Parse(name)
		if err != nil {
			return nil, usagef("%s: %v", name, err)
		}
		key := path.Base(u.Path)
		u.Path = path.Dir(u.Path)
		if u.Path == "/" || u.Path == "." {
			u.Path = ""
		}
		loc, err := storage.Open(ctx, u.String())
		if err != nil {
			return nil, err
		}
		in.open = func(ctx context.Context) (io.ReadCloser, error) {
			rd, err := loc.Bucket.NewReader(ctx, key, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			in.size = rd.Size()
			return rd, nil
		}
	} else {
		st, err := os.Stat(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, errors.Unwrap(err))
		}
		if st.IsDir() {
			return nil, usagef("%s is a folder: name the files to ingest", name)
		}
		in.size = st.Size()
		in.open = func(context.Context) (io.ReadCloser, error) { return os.Open(name) }
	}
	if r.f.idemKey != "" {
		in.appID = "lake-ingest-key-" + r.f.idemKey
		return in, nil
	}
	rc, err := in.open(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h := sha256.New()
	var last byte
	buf := make([]byte, 1<<20)
	for {
		n, err := rc.Read(buf)
		h.Write(buf[:n])
		for i := n - 1; i >= 0; i-- {
			if c := buf[i]; c != ' ' && c != '\n' && c != '\r' && c != '\t' {
				last = c
				break
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	in.appID = "lake-ingest-" + hex.EncodeToString(h.Sum(nil))[:40]
	if r.jsonArray(ctx, in) && last != ']' && last != 0 {
		return nil, fmt.Errorf("%s: the JSON array does not end with ']': the file is truncated or has data after the array; fix it and ingest it again (nothing was committed)", name)
	}
	return in, nil
}

// jsonArray reports whether an uncompressed input holds a JSON array.
func (r *ingestRun) jsonArray(ctx context.Context, in *input) bool {
	if f := r.ropts.Format; f != "auto" && f != "json" {
		return false
	}
	if f := source.FormatFromName(in.name); f != "" && f != source.FormatJSON {
		return false
	}
	rc, err := in.open(ctx)
	if err != nil {
		return false
	}
	defer rc.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(rc, head)
	s := strings.TrimLeft(strings.TrimPrefix(string(head[:n]), "\xef\xbb\xbf"), " \t\r\n")
	return strings.HasPrefix(s, "[")
}

// ingestFile appends one input, one commit per file or per --batch-rows records.
func (r *ingestRun) ingestFile(ctx context.Context, name string) error {
	in, err := r.openInput(ctx, name)
	if err != nil {
		return err
	}
	appID := in.appID
	if r.f.force && appID != "" {
		appID += "-force-" + uuid.NewString()
	}
	if appID != "" {
		// The last batch of a file also records appID-done: a file ingested whole is skipped
		// without reading it again.
		done, err := r.sink.Has(ctx, appID+"-done", 1)
		if err != nil {
			return err
		}
		if done {
			r.overall.Files++
			r.overall.FilesSkipped++
			return nil
		}
	}
	rc, err := in.open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	cr := &countReader{r: rc}
	std, err := r.standardizer(name)
	if err != nil {
		return err
	}
	defer std.Close()
	ro := r.ropts
	ro.Name, ro.File = name, fileLabel(name)
	ro.ChunkRows = 65536
	if r.f.batchRows > 0 && r.f.batchRows < int64(ro.ChunkRows) {
		ro.ChunkRows = int(r.f.batchRows)
	}
	var (
		seq     int64 = 1
		pending *source.Pending
		inBatch int64
		skipped = true
		fileCnt source.Counts
	)
	begin := func() error {
		var err error
		pending, err = r.sink.Begin(ctx, appID, seq)
		return err
	}
	finish := func(last bool) error {
		p := pending
		pending = nil
		if last && appID != "" {
			p.MarkDone(appID+"-done", 1)
		}
		c := p.Counts()
		if !p.Skipped() && c.Read > 0 && float64(c.Quarantined) > r.f.maxBad*float64(c.Read) {
			p.Abort(context.WithoutCancel(ctx))
			return fmt.Errorf("%s: %d of %d records in batch %d were refused (more than --max-bad-fraction %g; first reasons: %s); nothing of this batch was committed",
				name, c.Quarantined, c.Read, seq, r.f.maxBad, strings.Join(r.reasons, "; "))
		}
		res, err := p.Finish(ctx, map[string]any{"file": fileLabel(name)})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if !res.Skipped {
			skipped = false
			if res.Committed {
				r.overall.Commits++
			}
			r.overall.Version = res.Version
			if res.QuarantineVersion >= 0 {
				v := res.QuarantineVersion
				r.overall.QuarantineV = &v
			}
			fileCnt.Add(c)
		}
		seq++
		inBatch = 0
		return nil
	}
	r.reasons = r.reasons[:0]
	if err := begin(); err != nil {
		return err
	}
	defer func() {
		if pending != nil {
			pending.Abort(context.WithoutCancel(ctx))
		}
	}()
	for b, err := range source.ReadAhead(cr, &ro, std) {
		if err != nil {
			return r.readError(name, err, seq)
		}
		r.noteReasons(b)
		werr := pending.Write(ctx, b)
		inBatch += b.Counts.Read
		b.Release()
		if werr != nil {
			return fmt.Errorf("%s: %w", name, werr)
		}
		r.prog.bytes(fileLabel(name), cr.n.Load(), in.size, r.overall.RowsRead+fileCnt.Read+pending.Counts().Read)
		if r.f.batchRows > 0 && inBatch >= r.f.batchRows {
			if err := finish(false); err != nil {
				return err
			}
			if err := begin(); err != nil {
				return err
			}
		}
	}
	// The last batch is committed even when empty (a file that ends on a batch boundary): it
	// carries the done marker.
	if err := finish(true); err != nil {
		return err
	}
	r.overall.Files++
	if skipped && appID != "" {
		r.overall.FilesSkipped++
	}
	r.overall.RowsRead += fileCnt.Read
	r.overall.RowsWritten += fileCnt.Written
	r.overall.Quarantined += fileCnt.Quarantined
	r.overall.Duplicate += fileCnt.Duplicate
	return nil
}

// ingestOverwrite replaces the table (or the --replace-where partitions) with every input, in one
// commit whatever --batch-rows says.
func (r *ingestRun) ingestOverwrite(ctx context.Context, names []string) error {
	h := sha256.New()
	var ins []*input
	for _, n := range names {
		in, err := r.openInput(ctx, n)
		if err != nil {
			return err
		}
		if in.appID == "" {
			h.Write([]byte(uuid.NewString()))
		}
		h.Write([]byte(in.appID + "\n"))
		ins = append(ins, in)
	}
	fmt.Fprintf(h, "%s %v", r.f.mode, r.f.replaceWhere.vals)
	appID := "lake-ingest-" + hex.EncodeToString(h.Sum(nil))[:40]
	if r.f.force {
		appID += "-force-" + uuid.NewString()
	}
	p, err := r.sink.Begin(ctx, appID, 1)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			p.Abort(context.WithoutCancel(ctx))
		}
	}()
	for _, in := range ins {
		if err := r.writeInput(ctx, p, in); err != nil {
			return err
		}
		r.overall.Files++
	}
	c := p.Counts()
	if c.Read > 0 && float64(c.Quarantined) > r.f.maxBad*float64(c.Read) {
		return fmt.Errorf("%d of %d records were refused (more than --max-bad-fraction %g; first reasons: %s); nothing was committed",
			c.Quarantined, c.Read, r.f.maxBad, strings.Join(r.reasons, "; "))
	}
	committed = true
	res, err := p.Finish(ctx, nil)
	if err != nil {
		return err
	}
	if res.Skipped {
		r.overall.FilesSkipped = len(ins)
		return nil
	}
	r.overall.Commits++
	r.overall.Version = res.Version
	if res.QuarantineVersion >= 0 {
		v := res.QuarantineVersion
		r.overall.QuarantineV = &v
	}
	r.overall.RowsRead, r.overall.RowsWritten, r.overall.Quarantined, r.overall.Duplicate = c.Read, c.Written, c.Quarantined, c.Duplicate
	return nil
}

// writeInput writes every record of one input into the pending commit p.
func (r *ingestRun) writeInput(ctx context.Context, p *source.Pending, in *input) error {
	rc, err := in.open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	std, err := r.standardizer(in.name)
	if err != nil {
		return err
	}
	defer std.Close()
	ro := r.ropts
	ro.Name, ro.File = in.name, fileLabel(in.name)
	cr := &countReader{r: rc}
	for b, err := range source.ReadAhead(cr, &ro, std) {
		if err != nil {
			return r.readError(in.name, err, 0)
		}
		r.noteReasons(b)
		werr := p.Write(ctx, b)
		b.Release()
		if errors.Is(werr, writer.ErrOutsideWhere) {
			return fmt.Errorf("%s: %w; nothing was committed", in.name, werr)
		}
		if werr != nil {
			return fmt.Errorf("%s: %w", in.name, werr)
		}
		r.prog.bytes(fileLabel(in.name), cr.n.Load(), in.size, p.Counts().Read)
	}
	return nil
}

func (r *ingestRun) standardizer(name string) (*source.Standardizer, error) {
	o := r.sopts
	o.File = fileLabel(name)
	if o.Source == "" && (o.Mapping == nil || o.Mapping.Source == "") && name == "-" {
		o.Source = "stdin"
	}
	s, err := source.NewStandardizer(&o)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return s, nil
}

// readError words an error of reading an input.
func (r *ingestRun) readError(name string, err error, seq int64) error {
	var ce *source.ConfigError
	if errors.As(err, &ce) {
		return usagef("%s: %v", name, err)
	}
	done := ""
	if seq > 1 {
		done = fmt.Sprintf(" (its first %d batches were committed; once the file is fixed, ingest it with the same flags)", seq-1)
	} else {
		done = " (nothing of it was committed)"
	}
	return fmt.Errorf("%s: %w%s", name, err, done)
}

// noteReasons keeps the first few distinct quarantine reasons, for error messages.
func (r *ingestRun) noteReasons(b *source.Batch) {
	if b.Quarantine == nil || len(r.reasons) >= 3 {
		return
	}
	col := b.Quarantine.Column(5).(*array.String)
	for i := 0; i < col.Len() && len(r.reasons) < 3; i++ {
		v := col.Value(i)
		if len(v) > 120 {
			v = v[:120] + "…"
		}
		line := b.Quarantine.Column(3)
		if !line.IsNull(i) {
			v = "line " + strconv.FormatInt(line.(*array.Int64).Value(i), 10) + ": " + v
		}
		dup := false
		for _, x := range r.reasons {
			dup = dup || x == v
		}
		if !dup {
			r.reasons = append(r.reasons, v)
		}
	}
}

// fileLabel is how an input is named in quarantine rows and commitInfo.
func fileLabel(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

// countReader counts the bytes read through it (read on the reading goroutine, loaded by the
// progress line on another).
type countReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// parseDuration takes Go's durations plus d (days) and w (weeks).
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	mult := time.Duration(0)
	switch {
	case strings.HasSuffix(s, "d"):
		mult = 24 * time.Hour
	case strings.HasSuffix(s, "w"):
		mult = 7 * 24 * time.Hour
	}
	if mult > 0 {
		n, err := strconv.ParseFloat(s[:len(s)-1], 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("want a duration such as 90m, 36h, 7d or 2w")
		}
		return time.Duration(n * float64(mult)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration such as 90m, 36h, 7d or 2w")
	}
	return d, nil
}
