package source

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unsafe"
)

// maxRecordBytes is the longest CSV record or JSON line read; a longer one is quarantined (it is
// most often an unclosed quote that swallowed the rest of the file).
const maxRecordBytes = 16 << 20

// csvReader reads CSV records without allocating per record: fields point into its buffers and
// are valid until the next call of next.
type csvReader struct {
	br     *bufio.Reader
	delim  byte
	line   int64  // line of the next record's start (1-based)
	offset int64  // byte offset of the next record's start
	rec    []byte // the current record: a view of the reader's buffer or of own
	own    []byte // records that do not fit the fast path are assembled here
	buf    []byte
	fields []string
	first  bool
	// what next read
	recLine, recOffset int64
	tooLong            bool
	unclosed           bool
	badQuote           bool
}

func newCSVReader(r io.Reader, delim byte) *csvReader {
	return &csvReader{br: bufio.NewReaderSize(r, 1<<20), delim: delim, line: 1, first: true}
}

// readLine appends one physical line (without its \n) to c.rec; it reports false at EOF with
// nothing read.
func (c *csvReader) readLine() (bool, error) {
	start := len(c.rec)
	for {
		chunk, err := c.br.ReadSlice('\n')
		if len(c.rec)-start+len(chunk) <= maxRecordBytes {
			c.rec = append(c.rec, chunk...)
		} else {
			c.tooLong = true
		}
		c.offset += int64(len(chunk))
		if err == nil {
			c.line++
			c.rec = c.rec[:len(c.rec)-1]
			return true, nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			return len(c.rec) > start || c.tooLong && start == 0 && len(chunk) > 0, nil
		}
		return false, err
	}
}

// next reads the next non-blank record. ok is false at the end of the input.
func (c *csvReader) next() (ok bool, err error) {
	for {
		c.tooLong, c.unclosed, c.badQuote = false, false, false
		c.recLine, c.recOffset = c.line, c.offset
		// The common case: a whole line inside the reader's buffer is used in place (valid until
		// the next read); a longer one, or one with a quoted newline, is copied into c.own.
		owned := false
		chunk, err := c.br.ReadSlice('\n')
		switch {
		case err == nil:
			c.offset += int64(len(chunk))
			c.line++
			c.rec = chunk[:len(chunk)-1]
		case errors.Is(err, bufio.ErrBufferFull) || err == io.EOF:
			if err == io.EOF && len(chunk) == 0 {
				return false, nil
			}
			c.offset += int64(len(chunk))
			c.own = append(c.own[:0], chunk...)
			c.rec = c.own
			owned = true
			if err != io.EOF {
				if _, err := c.readLine(); err != nil {
					return false, err
				}
			}
		default:
			return false, err
		}
		if c.first {
			c.first = false
			c.rec = bytes.TrimPrefix(c.rec, []byte("\xef\xbb\xbf"))
		}
		// A quoted field may hold newlines: read on while a quote is open.
		qs := quoteScan{}
		for !c.tooLong && qs.open(c.rec, c.delim) {
			if !owned {
				c.own = append(c.own[:0], c.rec...)
				c.rec = c.own
				owned = true
			}
			c.rec = append(c.rec, '\n')
			more, err := c.readLine()
			if err != nil {
				return false, err
			}
			if !more {
				c.unclosed = true
				c.rec = c.rec[:len(c.rec)-1]
				break
			}
		}
		if owned {
			c.own = c.rec
		}
		rec := c.rec
		if n := len(rec); n > 0 && rec[n-1] == '\r' {
			rec = rec[:n-1]
			c.rec = rec
		}
		if len(rec) == 0 && !c.tooLong {
			continue // a blank line
		}
		c.split(rec)
		return true, nil
	}
}

// quoteScan tracks, across the physical lines of one record, whether a quoted field is open, so
// that each byte is scanned once (rescanning the record at every quoted newline would make a
// hostile file with an unclosed quote quadratic).
type quoteScan struct {
	in, fieldStart, pendingQuote bool
	pos                          int
}

// open scans rec from where the last call stopped and reports whether rec ends inside quotes.
func (q *quoteScan) open(rec []byte, delim byte) bool {
	if q.pos == 0 {
		q.in, q.fieldStart, q.pendingQuote = false, true, false
		if bytes.IndexByte(rec, '"') < 0 {
			q.pos = len(rec)
			return false
		}
	}
	for i := q.pos; i < len(rec); i++ {
		b := rec[i]
		switch {
		case q.pendingQuote: // a quote inside quotes: "" (an escaped quote) or the closing one
			q.pendingQuote = false
			if b == '"' {
				continue
			}
			q.in = false
			q.fieldStart = b == delim
		case q.in:
			if b == '"' {
				q.pendingQuote = true
			}
		case b == '"' && q.fieldStart:
			q.in = true
			q.fieldStart = false
		case b == delim:
			q.fieldStart = true
		default:
			q.fieldStart = false
		}
	}
	q.pos = len(rec)
	return q.in && !q.pendingQuote
}

// split cuts rec into fields.
func (c *csvReader) split(rec []byte) {
	c.fields = c.fields[:0]
	if cap(c.buf) < len(rec) {
		c.buf = make([]byte, 0, len(rec)+len(rec)/2)
	}
	c.buf = c.buf[:0]
	if bytes.IndexByte(rec, '"') < 0 { // the fast path: no quotes at all
		for {
			i := bytes.IndexByte(rec, c.delim)
			if i < 0 {
				c.fields = append(c.fields, bstr(rec))
				return
			}
			c.fields = append(c.fields, bstr(rec[:i]))
			rec = rec[i+1:]
		}
	}
	for {
		if len(rec) > 0 && rec[0] == '"' {
			start := len(c.buf)
			i := 1
			closed := false
			for i < len(rec) {
				if rec[i] == '"' {
					if i+1 < len(rec) && rec[i+1] == '"' {
						c.buf = append(c.buf, '"')
						i += 2
						continue
					}
					closed = true
					i++
					break
				}
				c.buf = append(c.buf, rec[i])
				i++
			}
			if !closed {
				c.unclosed = true
			}
			c.fields = append(c.fields, bstr(c.buf[start:]))
			rec = rec[i:]
			if len(rec) == 0 {
				return
			}
			if rec[0] != c.delim {
				c.badQuote = true
				j := bytes.IndexByte(rec, c.delim)
				if j < 0 {
					return
				}
				rec = rec[j:]
			}
			rec = rec[1:]
			if len(rec) == 0 {
				c.fields = append(c.fields, "")
				return
			}
			continue
		}
		i := bytes.IndexByte(rec, c.delim)
		if i < 0 {
			c.fields = append(c.fields, bstr(rec))
			return
		}
		c.fields = append(c.fields, bstr(rec[:i]))
		rec = rec[i+1:]
	}
}

// bstr views b as a string without copying; it is valid while b is.
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// detectDelimiter picks the most frequent of , tab ; | outside quotes in a header line.
func detectDelimiter(line []byte) byte {
	best, bestN := byte(','), 0
	for _, d := range []byte{',', '\t', ';', '|'} {
		n, in := 0, false
		for _, b := range line {
			if b == '"' {
				in = !in
			} else if b == d && !in {
				n++
			}
		}
		if n > bestN {
			best, bestN = d, n
		}
	}
	return best
}

// readCSV streams a CSV file into s, yielding after every chunk records.
func readCSV(br *bufio.Reader, o *ReadOptions, s *Standardizer, yield func() error) error {
	delim := byte(0)
	switch d := o.Delimiter; {
	case d == `\t` || d == "tab":
		delim = '\t'
	case len(d) == 1:
		delim = d[0]
	case d != "":
		return &ConfigError{Err: fmt.Errorf("--delimiter %q: want one character", d)}
	case o.Format == "tsv":
		delim = '\t'
	default:
		peek, _ := br.Peek(64 << 10)
		if i := bytes.IndexByte(peek, '\n'); i >= 0 {
			peek = peek[:i]
		}
		delim = detectDelimiter(peek)
	}
	c := newCSVReader(br, delim)
	var names []string
	header := o.Header == nil || *o.Header
	if header {
		ok, err := c.next()
		if err != nil {
			return err
		}
		if !ok {
			return nil // an empty file
		}
		if c.unclosed || c.badQuote || c.tooLong {
			return &FileError{Err: fmt.Errorf("the header line is not valid CSV")}
		}
		seen := map[string]bool{}
		for i, f := range c.fields {
			n := strings.Clone(strings.TrimSpace(f)) // fields are views of the reader's buffer
			if n == "" {
				n = "column" + strconv.Itoa(i+1)
			}
			if seen[n] {
				return &ConfigError{Err: fmt.Errorf("the header names column %q twice", n), Hint: "rename one of them, or give --no-header with --columns"}
			}
			seen[n] = true
			names = append(names, n)
		}
	} else {
		names = o.Columns
	}
	if err := s.CheckColumns(names); err != nil {
		return err
	}
	rec := &csvRecord{}
	rec.setNames(names, s)
	pending := 0
	for {
		ok, err := c.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		pos := Position{File: o.File, Line: c.recLine, Offset: c.recOffset}
		switch {
		case c.tooLong:
			s.count.Read++
			s.quarantine(c.rec, pos, fmt.Sprintf("record longer than %d MiB (an unclosed quote?)", maxRecordBytes>>20), "")
		case c.unclosed:
			s.count.Read++
			s.quarantine(c.rec, pos, "unclosed quoted field", "")
		case c.badQuote:
			s.count.Read++
			s.quarantine(c.rec, pos, "text after a closing quote", "")
		case !header && names == nil:
			names = make([]string, len(c.fields))
			for i := range names {
				names[i] = "column" + strconv.Itoa(i+1)
			}
			rec.setNames(names, s)
			fallthrough
		default:
			if len(c.fields) != len(names) {
				s.count.Read++
				rec.fields = c.fields
				s.quarantine(c.rec, pos, fmt.Sprintf("%d fields where the header has %d", len(c.fields), len(names)), s.peekUser(rec))
				break
			}
			rec.fields = c.fields
			if err := s.add(rec, c.rec, pos); err != nil {
				return err
			}
		}
		if pending++; pending >= o.ChunkRows {
			pending = 0
			if err := yield(); err != nil {
				return err
			}
		}
	}
	return nil
}
