package source

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Formats of ReadOptions.Format.
const (
	FormatAuto   = "auto"
	FormatCSV    = "csv"
	FormatTSV    = "tsv"
	FormatJSON   = "json"   // a JSON array of objects (NDJSON is detected too)
	FormatNDJSON = "ndjson" // one JSON object per line
)

// ReadOptions configure Read.
type ReadOptions struct {
	// Format is auto (from the name, then the first bytes), csv, tsv, json or ndjson.
	Format string
	// Name is the input's name, for format detection (a .gz or .zst suffix is looked through).
	Name string
	// File is recorded in quarantine rows and positions.
	File string
	// Delimiter (CSV): one character, or \t; default detected from the header line (tsv: tab).
	Delimiter string
	// Header (CSV): whether the first line names the columns (default true); without one, Columns
	// names them (default column1, column2, ...).
	Header  *bool
	Columns []string
	// ChunkRows is how many records each yielded Batch holds at most (default 65536).
	ChunkRows int
}

// FileError is a structural problem of a whole file (a truncated JSON array, data after its
// end) that no quarantine row can stand for: the call fails.
type FileError struct{ Err error }

func (e *FileError) Error() string { return e.Err.Error() }
func (e *FileError) Unwrap() error { return e.Err }

// Read standardises every record of r with s and yields a Batch every o.ChunkRows records and
// at the end (the last one may be empty). r may be gzip or zstd compressed (detected from its
// first bytes). Breaking out of the loop stops reading; the caller releases each Batch.
func Read(r io.Reader, o *ReadOptions, s *Standardizer) iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		var opts ReadOptions
		if o != nil {
			opts = *o
		}
		if opts.ChunkRows <= 0 {
			opts.ChunkRows = 65536
		}
		br, closer, err := decompress(r)
		if err != nil {
			yield(nil, err)
			return
		}
		defer closer()
		format, err := detectFormat(br, opts.Format, opts.Name)
		if err != nil {
			yield(nil, err)
			return
		}
		opts.Format = format
		stopped := errors.New("stopped")
		emit := func() error {
			b, err := s.Flush()
			if err != nil {
				return err
			}
			if !yield(b, nil) {
				return stopped
			}
			return nil
		}
		switch format {
		case FormatCSV, FormatTSV:
			err = readCSV(br, &opts, s, emit)
		case FormatNDJSON:
			err = readNDJSON(br, &opts, s, emit)
		default:
			err = readJSONArray(br, &opts, s, emit)
		}
		if errors.Is(err, stopped) {
			return
		}
		if err != nil {
			if b, _ := s.Flush(); b != nil { // drop what the failed chunk held
				b.Release()
			}
			yield(nil, err)
			return
		}
		_ = emit()
	}
}

// decompress looks at the first bytes: gzip and zstd streams are decompressed.
func decompress(r io.Reader) (*bufio.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, &FileError{Err: fmt.Errorf("not a valid gzip stream: %w", err)}
		}
		return bufio.NewReaderSize(zr, 1<<20), func() { zr.Close() }, nil
	case len(magic) == 4 && bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, &FileError{Err: fmt.Errorf("not a valid zstd stream: %w", err)}
		}
		return bufio.NewReaderSize(zr, 1<<20), zr.Close, nil
	}
	return br, func() {}, nil
}

// FormatFromName returns the format a file name implies ("" when it implies none).
func FormatFromName(name string) string {
	n := strings.ToLower(name)
	for _, z := range []string{".gz", ".gzip", ".zst", ".zstd"} {
		n = strings.TrimSuffix(n, z)
	}
	switch path.Ext(n) {
	case ".csv":
		return FormatCSV
	case ".tsv", ".tab":
		return FormatTSV
	case ".json":
		return FormatJSON
	case ".ndjson", ".jsonl":
		return FormatNDJSON
	}
	return ""
}

// detectFormat resolves auto (and json, whose files are often NDJSON) from the name and the
// first bytes.
func detectFormat(br *bufio.Reader, format, name string) (string, error) {
	switch format {
	case "", FormatAuto:
		format = FormatFromName(name)
	case FormatCSV, FormatTSV, FormatJSON, FormatNDJSON:
	default:
		return "", &ConfigError{Err: fmt.Errorf("--format %q: want auto, csv, tsv, json or ndjson", format)}
	}
	if format == FormatCSV || format == FormatTSV || format == FormatNDJSON {
		return format, nil
	}
	peek, _ := br.Peek(4096)
	peek = bytes.TrimLeft(bytes.TrimPrefix(peek, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case len(peek) > 0 && peek[0] == '[':
		return FormatJSON, nil
	case len(peek) > 0 && peek[0] == '{':
		return FormatNDJSON, nil
	case format == FormatJSON:
		if len(peek) == 0 {
			return FormatJSON, nil
		}
		return "", &FileError{Err: errors.New("not JSON: it starts with neither [ nor {")}
	}
	return FormatCSV, nil
}

// readNDJSON reads one JSON object per line; a line that is not one is quarantined.
func readNDJSON(br *bufio.Reader, o *ReadOptions, s *Standardizer, yield func() error) error {
	c := newCSVReader(br, 0)
	pending := 0
	for {
		c.rec = c.rec[:0]
		c.tooLong = false
		line, off := c.line, c.offset
		got, err := c.readLine()
		if err != nil {
			return err
		}
		if !got {
			return nil
		}
		rec := c.rec
		if line == 1 {
			rec = bytes.TrimPrefix(rec, []byte("\xef\xbb\xbf"))
		}
		rec = bytes.TrimRight(rec, "\r")
		if len(bytes.TrimSpace(rec)) == 0 && !c.tooLong {
			continue
		}
		pos := Position{File: o.File, Line: line, Offset: off}
		if c.tooLong {
			s.count.Read++
			s.quarantine(rec, pos, fmt.Sprintf("line longer than %d MiB", maxRecordBytes>>20), "")
		} else if err := s.AddJSON(rec, pos); err != nil {
			return err
		}
		if pending++; pending >= o.ChunkRows {
			pending = 0
			if err := yield(); err != nil {
				return err
			}
		}
	}
}

// countingReader counts the bytes and newlines read through it.
type countingReader struct {
	r     io.Reader
	n     int64
	lines []int64 // offsets of the newlines seen (trimmed as records are positioned)
	base  int64   // lines before lines[0]
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i, b := range p[:n] {
		if b == '\n' {
			c.lines = append(c.lines, c.n+int64(i))
		}
	}
	c.n += int64(n)
	return n, err
}

// lineAt is the 1-based line of byte offset off; offsets must not decrease between calls.
func (c *countingReader) lineAt(off int64) int64 {
	i := 0
	for i < len(c.lines) && c.lines[i] < off {
		i++
	}
	c.base += int64(i)
	c.lines = c.lines[i:]
	return c.base + 1
}

// readJSONArray reads a JSON array of objects element by element; an element that is not an
// object is quarantined, and a file that is not a well-formed array is a *FileError.
func readJSONArray(br *bufio.Reader, o *ReadOptions, s *Standardizer, yield func() error) error {
	cr := &countingReader{r: br}
	dec := json.NewDecoder(cr)
	dec.UseNumber()
	tok, err := dec.Token()
	if err == io.EOF {
		return nil // an empty file
	}
	if d, ok := tok.(json.Delim); err != nil || !ok || d != '[' {
		return &FileError{Err: errors.New("not a JSON array: it does not start with [")}
	}
	pending := 0
	for n := 1; dec.More(); n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return &FileError{Err: fmt.Errorf("element %d (byte %d): %v: the JSON array is broken or truncated; fix the file and ingest it again", n, dec.InputOffset(), jsonErr(err))}
		}
		end := dec.InputOffset()
		start := end - int64(len(raw))
		pos := Position{File: o.File, Line: cr.lineAt(start), Offset: start}
		if err := s.AddJSON(raw, pos); err != nil {
			return err
		}
		if pending++; pending >= o.ChunkRows {
			pending = 0
			if err := yield(); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return &FileError{Err: fmt.Errorf("the JSON array is not closed (%v): the file is truncated; fix it and ingest it again", jsonErr(err))}
	}
	if tok, err := dec.Token(); err != io.EOF {
		what := fmt.Sprint(tok)
		if err != nil {
			what = err.Error()
		}
		return &FileError{Err: fmt.Errorf("data after the end of the JSON array at byte %d (%.40s): fix the file and ingest it again", dec.InputOffset(), what)}
	}
	return nil
}

func jsonErr(err error) string {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of file"
	}
	return err.Error()
}

// ReadAhead is Read on a goroutine of its own, at most two Batches ahead of the caller: the
// standardising of the next chunk overlaps the caller's writing of this one. The Standardizer is
// used by that goroutine until the loop ends (a break or the end of the input), when ReadAhead
// has waited for it; batches read ahead and not taken are released.
func ReadAhead(r io.Reader, o *ReadOptions, s *Standardizer) iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		type item struct {
			b   *Batch
			err error
		}
		ch := make(chan item, 2)
		stop := make(chan struct{})
		go func() {
			defer close(ch)
			for b, err := range Read(r, o, s) {
				select {
				case ch <- item{b, err}:
				case <-stop:
					if b != nil {
						b.Release()
					}
					return
				}
			}
		}()
		defer func() {
			close(stop)
			for it := range ch { // wait for the goroutine; release what it read ahead
				if it.b != nil {
					it.b.Release()
				}
			}
		}()
		for it := range ch {
			if !yield(it.b, it.err) {
				return
			}
		}
	}
}
