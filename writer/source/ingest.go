package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/google/uuid"

	"github.com/lakehouse/lake/internal/storage"
	"github.com/lakehouse/lake/writer"
)

// Input is one file to ingest: a local path, an object-store URL (s3://bucket/dir/file.csv?...,
// gs://, azblob://, mem://, file://) or stdin.
type Input struct {
	// Name is the input as given ("-" for stdin).
	Name string
	// Size is its size in bytes (0: unknown).
	Size  int64
	open  func(ctx context.Context) (io.ReadCloser, error)
	close func() error
	stdin bool
}

// OpenInput opens name: "-" reads stdin (os.Stdin), a name with :// is an object in a bucket,
// anything else a local file. The caller closes the Input.
func OpenInput(ctx context.Context, name string) (*Input, error) {
	in := &Input{Name: name, close: func() error { return nil }}
	switch {
	case name == "-":
		in.stdin = true
		in.open = func(context.Context) (io.ReadCloser, error) { return io.NopCloser(os.Stdin), nil }
	case strings.Contains(name, "://"):
		u, err := url.Parse(name)
		if err != nil {
			return nil, &ConfigError{Err: fmt.Errorf("%s: %v", name, err)}
		}
		key := path.Base(u.Path)
		if key == "/" || key == "." || strings.HasSuffix(u.Path, "/") {
			return nil, &ConfigError{Err: fmt.Errorf("%s names a folder: name the objects to ingest", name)}
		}
		u.Path = path.Dir(u.Path)
		if u.Path == "/" || u.Path == "." {
			u.Path = ""
		}
		loc, err := storage.Open(ctx, u.String())
		if err != nil {
			return nil, err
		}
		attrs, err := loc.Bucket.Attributes(ctx, key)
		if err != nil {
			loc.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		in.Size = attrs.Size
		in.close = loc.Close
		in.open = func(ctx context.Context) (io.ReadCloser, error) {
			rd, err := loc.Bucket.NewReader(ctx, key, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			return rd, nil
		}
	default:
		st, err := os.Stat(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, errors.Unwrap(err))
		}
		if st.IsDir() {
			return nil, &ConfigError{Err: fmt.Errorf("%s is a folder: name the files to ingest", name)}
		}
		in.Size = st.Size()
		in.open = func(context.Context) (io.ReadCloser, error) { return os.Open(name) }
	}
	return in, nil
}

// Close releases the input's bucket, if it has one.
func (in *Input) Close() error { return in.close() }

// label is how the input is named in quarantine rows and commitInfo.
func (in *Input) label() string {
	if in.stdin {
		return "stdin"
	}
	return in.Name
}

// IngestOptions configure Sink.Ingest.
type IngestOptions struct {
	// Standardize are the options of each input's Standardizer (File is set per input; a nil
	// Seen gets one set shared by all the inputs, so duplicates inside one call are dropped).
	Standardize Options
	// Read are the options of each input's reader (Name and File are set per input).
	Read ReadOptions
	// BatchRows commits every BatchRows records of a file (0: one commit per file). An overwrite
	// (the Sink's mode is not Append) is one commit of every input whatever it says.
	BatchRows int64
	// MaxBadFraction fails the call when a batch has more than this fraction of its records
	// quarantined, before it is committed (default 0.5; 1 never fails).
	MaxBadFraction float64
	// Force ingests files that the table already has (a new fingerprint per call).
	Force bool
	// IdempotencyKey is stdin's fingerprint (stdin has none without it: it cannot be read twice).
	IdempotencyKey string
	// Progress, when set, is called after each chunk with the input, the bytes read of it, and
	// the records read in the call so far. It is called from the caller's goroutine.
	Progress func(in *Input, bytesRead, records int64)
}

// IngestResult is what Ingest did.
type IngestResult struct {
	Counts
	Files, FilesSkipped int
	Commits             int
	// Version is the table's version after the last commit (the version read when none);
	// QuarantineVersion the quarantine table's after its last commit (-1: not written).
	Version           int64
	QuarantineVersion int64
	// Reasons are the first few distinct quarantine reasons, for messages.
	Reasons []string
}

// IngestError is a failure of one input; Committed batches of it had landed before it.
type IngestError struct {
	Input     string
	Committed int64
	Err       error
}

func (e *IngestError) Error() string {
	msg := e.Input + ": " + e.Err.Error()
	var fe *FileError
	if errors.As(e.Err, &fe) || errors.Is(e.Err, ErrTooManyBad) && e.Committed > 0 {
		if e.Committed > 0 {
			msg += fmt.Sprintf(" (its first %d batches were committed; once the file is fixed, ingest it again with the same flags to add the rest)", e.Committed)
		} else {
			msg += " (nothing of it was committed)"
		}
	}
	return msg
}

func (e *IngestError) Unwrap() error { return e.Err }

// ErrTooManyBad is wrapped by the error of a batch with more than MaxBadFraction quarantined.
var ErrTooManyBad = errors.New("too many records refused")

// Ingest standardises and commits inputs, one commit per file or per BatchRows records (Append),
// or all of them in one commit (overwrite modes). Each file's commits carry the txn
// (lake-ingest-<sha256 of its bytes>, batch number), and its last one also
// (lake-ingest-<hash>-done, 1): a batch the table has is skipped, and a file it has whole is not
// read again. Errors: *ConfigError for options or input that no record can fix, *IngestError
// for an input that failed (wrapping a *FileError, ErrTooManyBad, a writer or storage error).
func (k *Sink) Ingest(ctx context.Context, inputs []*Input, o *IngestOptions) (*IngestResult, error) {
	g := &ingestRun{k: k, res: &IngestResult{QuarantineVersion: -1}}
	if o != nil {
		g.o = *o
	}
	if g.o.MaxBadFraction == 0 {
		g.o.MaxBadFraction = 0.5
	}
	if g.o.MaxBadFraction < 0 || g.o.MaxBadFraction > 1 {
		return nil, &ConfigError{Err: fmt.Errorf("the bad fraction must be between 0 and 1, not %g", g.o.MaxBadFraction)}
	}
	if g.o.BatchRows < 0 {
		return nil, &ConfigError{Err: fmt.Errorf("batch rows must be 0 or more, not %d", g.o.BatchRows)}
	}
	if g.o.Standardize.Seen == nil {
		g.o.Standardize.Seen = NewSeen()
	}
	std, err := NewStandardizer(&g.o.Standardize) // check the options before any input is read
	if err != nil {
		return nil, err
	}
	std.Close()
	snap, err := k.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	g.res.Version = snap.Version()
	if k.opts.Mode != writer.Append {
		err = g.overwrite(ctx, inputs)
	} else {
		for _, in := range inputs {
			if err = g.file(ctx, in); err != nil {
				break
			}
		}
	}
	return g.res, err
}

type ingestRun struct {
	k   *Sink
	o   IngestOptions
	res *IngestResult
}

// fingerprint is the input's txn appId: lake-ingest-<hash of its bytes> (read once before
// ingesting), or of the idempotency key for stdin ("" without one). For a JSON array it also
// checks, before anything is committed, that the last byte is ']' (a truncated file or data
// after the array fail here).
func (g *ingestRun) fingerprint(ctx context.Context, in *Input) (string, error) {
	if in.stdin {
		if g.o.IdempotencyKey == "" {
			return "", nil
		}
		return "lake-ingest-key-" + g.o.IdempotencyKey, nil
	}
	rc, err := in.open(ctx)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	var head []byte
	var last byte
	buf := make([]byte, 1<<20)
	for {
		n, err := rc.Read(buf)
		h.Write(buf[:n])
		if len(head) < 64 {
			head = append(head, buf[:min(n, 64)]...)
		}
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
			return "", fmt.Errorf("%s: %w", in.Name, err)
		}
		if err := ctx.Err(); err != nil {
			return "", err
		}
	}
	if g.jsonArray(in, head) && last != ']' {
		return "", &IngestError{Input: in.Name, Err: &FileError{Err: errors.New("the JSON array does not end with ']': the file is truncated or has data after the array")}}
	}
	id := "lake-ingest-" + hex.EncodeToString(h.Sum(nil))[:40]
	if g.o.Force {
		id += "-force-" + uuid.NewString()
	}
	return id, nil
}

// jsonArray reports whether an uncompressed input that starts with head holds a JSON array.
func (g *ingestRun) jsonArray(in *Input, head []byte) bool {
	if f := g.o.Read.Format; f != "" && f != FormatAuto && f != FormatJSON {
		return false
	}
	if f := FormatFromName(in.Name); f != "" && f != FormatJSON {
		return false
	}
	s := strings.TrimLeft(strings.TrimPrefix(string(head), "\xef\xbb\xbf"), " \t\r\n")
	return strings.HasPrefix(s, "[")
}

// records opens in and returns its standardised batches (read ahead on a goroutine), the counter
// of its bytes, and the function that closes what it opened (after the loop over the batches).
func (g *ingestRun) records(ctx context.Context, in *Input) (iter.Seq2[*Batch, error], *countReader, func(), error) {
	rc, err := in.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	std, err := g.standardizer(in)
	if err != nil {
		rc.Close()
		return nil, nil, nil, err
	}
	cr := &countReader{r: rc}
	return ReadAhead(cr, g.readOptions(in), std), cr, func() { std.Close(); rc.Close() }, nil
}

func (g *ingestRun) standardizer(in *Input) (*Standardizer, error) {
	o := g.o.Standardize
	o.File = in.label()
	if in.stdin && o.Source == "" && (o.Mapping == nil || o.Mapping.Source == "") {
		o.Source = "stdin"
	}
	return NewStandardizer(&o)
}

func (g *ingestRun) readOptions(in *Input) *ReadOptions {
	ro := g.o.Read
	ro.Name, ro.File = in.Name, in.label()
	if ro.ChunkRows <= 0 {
		ro.ChunkRows = 65536
	}
	if g.o.BatchRows > 0 && g.o.BatchRows < int64(ro.ChunkRows) {
		ro.ChunkRows = int(g.o.BatchRows)
	}
	return &ro
}

// file appends one input, one commit per file or per BatchRows records.
func (g *ingestRun) file(ctx context.Context, in *Input) error {
	appID, err := g.fingerprint(ctx, in)
	if err != nil {
		return err
	}
	g.res.Files++
	if appID != "" {
		done, err := g.k.Has(ctx, appID+"-done", 1)
		if err != nil {
			return err
		}
		if done {
			g.res.FilesSkipped++
			return nil
		}
	}
	records, cr, done, err := g.records(ctx, in)
	if err != nil {
		return err
	}
	defer done()
	var (
		seq       int64 = 1
		committed int64
		pending   *Pending
		inBatch   int64
		skipped   = true
		fileCnt   Counts
		params    = map[string]any{"file": in.label()}
	)
	fail := func(err error) error { return &IngestError{Input: in.Name, Committed: committed, Err: err} }
	finish := func(last bool) error {
		p := pending
		pending = nil
		if last && appID != "" {
			p.MarkDone(appID+"-done", 1)
		}
		c := p.Counts()
		if !p.Skipped() && c.Read > 0 && float64(c.Quarantined) > g.o.MaxBadFraction*float64(c.Read) {
			p.Abort(context.WithoutCancel(ctx))
			return fail(fmt.Errorf("%w: %d of %d records in batch %d were refused, more than the allowed fraction %g (first reasons: %s); nothing of this batch was committed",
				ErrTooManyBad, c.Quarantined, c.Read, seq, g.o.MaxBadFraction, strings.Join(g.res.Reasons, "; ")))
		}
		res, err := p.Finish(ctx, params)
		if err != nil {
			return fail(err)
		}
		if !res.Skipped {
			skipped = false
			if res.Committed {
				g.res.Commits++
				committed++
			}
			g.res.Version = res.Version
			if res.QuarantineVersion >= 0 {
				g.res.QuarantineVersion = res.QuarantineVersion
			}
			fileCnt.Add(c)
		}
		seq++
		inBatch = 0
		return nil
	}
	if pending, err = g.k.Begin(ctx, appID, seq); err != nil {
		return err
	}
	defer func() {
		if pending != nil {
			pending.Abort(context.WithoutCancel(ctx))
		}
	}()
	full := false // the pending batch has BatchRows records; it is finished when more follow
	for b, err := range records {
		if err != nil {
			var ce *ConfigError
			if errors.As(err, &ce) {
				return err
			}
			return fail(err)
		}
		if b.Counts.Read == 0 {
			b.Release()
			continue
		}
		if full {
			full = false
			if err := finish(false); err != nil {
				b.Release()
				return err
			}
			if pending, err = g.k.Begin(ctx, appID, seq); err != nil {
				b.Release()
				return err
			}
		}
		g.noteReasons(b)
		werr := pending.Write(ctx, b)
		inBatch += b.Counts.Read
		b.Release()
		if werr != nil {
			return fail(werr)
		}
		if g.o.Progress != nil {
			g.o.Progress(in, cr.n.Load(), g.res.Read+fileCnt.Read+pending.Counts().Read)
		}
		full = g.o.BatchRows > 0 && inBatch >= g.o.BatchRows
	}
	// The last batch carries the done marker (it is committed even when the file is empty).
	if err := finish(true); err != nil {
		return err
	}
	if skipped && appID != "" {
		g.res.FilesSkipped++
	}
	g.res.Add(fileCnt)
	return nil
}

// overwrite replaces the table (or the replaced partitions) with every input in one commit.
func (g *ingestRun) overwrite(ctx context.Context, inputs []*Input) error {
	h := sha256.New()
	for _, in := range inputs {
		id, err := g.fingerprint(ctx, in)
		if err != nil {
			return err
		}
		if id == "" {
			id = uuid.NewString() // stdin without a key: never skipped
		}
		h.Write([]byte(id + "\n"))
	}
	fmt.Fprintf(h, "%s %v", g.k.opts.Mode, g.k.opts.Where)
	appID := "lake-ingest-" + hex.EncodeToString(h.Sum(nil))[:40]
	if g.o.Force {
		appID += "-force-" + uuid.NewString()
	}
	p, err := g.k.Begin(ctx, appID, 1)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			p.Abort(context.WithoutCancel(ctx))
		}
	}()
	for _, in := range inputs {
		g.res.Files++
		if err := g.writeAll(ctx, p, in); err != nil {
			return err
		}
	}
	c := p.Counts()
	if c.Read > 0 && float64(c.Quarantined) > g.o.MaxBadFraction*float64(c.Read) {
		return &IngestError{Input: "the inputs", Err: fmt.Errorf("%w: %d of %d records were refused, more than the allowed fraction %g (first reasons: %s); nothing was committed",
			ErrTooManyBad, c.Quarantined, c.Read, g.o.MaxBadFraction, strings.Join(g.res.Reasons, "; "))}
	}
	committed = true
	res, err := p.Finish(ctx, nil)
	if err != nil {
		return err
	}
	if res.Skipped {
		g.res.FilesSkipped = len(inputs)
		return nil
	}
	if res.Committed {
		g.res.Commits++
	}
	g.res.Version = res.Version
	g.res.QuarantineVersion = res.QuarantineVersion
	g.res.Counts = c
	return nil
}

// writeAll writes every record of one input into the pending commit p.
func (g *ingestRun) writeAll(ctx context.Context, p *Pending, in *Input) error {
	records, cr, done, err := g.records(ctx, in)
	if err != nil {
		return err
	}
	defer done()
	for b, err := range records {
		if err != nil {
			var ce *ConfigError
			if errors.As(err, &ce) {
				return err
			}
			return &IngestError{Input: in.Name, Err: err}
		}
		g.noteReasons(b)
		werr := p.Write(ctx, b)
		b.Release()
		if werr != nil {
			return &IngestError{Input: in.Name, Err: fmt.Errorf("%w; nothing was committed", werr)}
		}
		if g.o.Progress != nil {
			g.o.Progress(in, cr.n.Load(), p.Counts().Read)
		}
	}
	return nil
}

// noteReasons keeps the first few distinct quarantine reasons, for error messages.
func (g *ingestRun) noteReasons(b *Batch) {
	if b.Quarantine == nil || len(g.res.Reasons) >= 3 {
		return
	}
	reason := b.Quarantine.Column(5).(*array.String)
	line := b.Quarantine.Column(3).(*array.Int64)
	for i := 0; i < reason.Len() && len(g.res.Reasons) < 3; i++ {
		v := reason.Value(i)
		if len(v) > 120 {
			v = v[:120] + "…"
		}
		if !line.IsNull(i) {
			v = "line " + strconv.FormatInt(line.Value(i), 10) + ": " + v
		}
		dup := false
		for _, x := range g.res.Reasons {
			dup = dup || x == v
		}
		if !dup {
			g.res.Reasons = append(g.res.Reasons, v)
		}
	}
}

// countReader counts the bytes read through it (on the reading goroutine; the progress callback
// loads it on the caller's).
type countReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
