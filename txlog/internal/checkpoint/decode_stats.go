package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ---- add.stats, read ahead -------------------------------------------------------------------------

// pqStatsPrefetch decodes the add.stats column of a row group in its own goroutine, ahead of the
// rows the decoder is at: decompressing and copying the JSON stats is most of a checkpoint's work,
// and this puts it on a second core.
type pqStatsPrefetch struct {
	ch     chan pqStatsChunk
	quit   chan struct{}
	done   chan struct{}
	cur    []string
	refs   []StatsRef // instead of cur when the stats go to a StatsWriter
	base   int        // row of cur[0]
	err    error
	closed bool
}

type pqStatsChunk struct {
	vals []string // one per row, "" when null
	refs []StatsRef
	err  error
}

const (
	pqStatsChunkRows = 4096
	pqStatsAhead     = 8 // chunks
)

// startStatsPrefetch reads the leaf (opened by the caller's goroutine) in a new goroutine.
// The stats go to sw when it is not nil, which the goroutine closes when it ends.
func startStatsPrefetch(l *pqLeaf, nrows int64, sw StatsWriter) *pqStatsPrefetch {
	p := &pqStatsPrefetch{ch: make(chan pqStatsChunk, pqStatsAhead), quit: make(chan struct{}), done: make(chan struct{})}
	go p.run(l, nrows, sw)
	return p
}

func (p *pqStatsPrefetch) run(l *pqLeaf, nrows int64, sw StatsWriter) {
	defer close(p.done)
	defer close(p.ch)
	send := func(c pqStatsChunk) bool {
		select {
		case p.ch <- c:
			return true
		case <-p.quit:
			return false
		}
	}
	defer func() {
		if r := recover(); r != nil {
			send(pqStatsChunk{err: fmt.Errorf("malformed checkpoint: column %s: %v", l.path, r)})
		}
	}()
	var arena pqArena
	if sw != nil {
		defer sw.Close()
	}
	for left := nrows; left > 0; {
		n := int(min(left, pqStatsChunkRows))
		var vals []string
		var refs []StatsRef
		if sw != nil {
			refs = make([]StatsRef, n)
		} else {
			vals = make([]string, n)
		}
		for i := range n {
			if err := l.next(); err != nil {
				send(pqStatsChunk{err: err})
				return
			}
			if l.rep != 0 {
				send(pqStatsChunk{err: fmt.Errorf("column %s: row does not start at repetition level 0", l.path)})
				return
			}
			switch {
			case !l.has():
			case sw != nil:
				if b := l.bytes(); len(b) > 0 {
					refs[i] = sw.Put(b)
				}
			default:
				vals[i] = arena.str(l.bytes())
			}
		}
		if !send(pqStatsChunk{vals: vals, refs: refs}) {
			return
		}
		left -= int64(n)
	}
}

// get is the stats of the row, as a string or a place in the StatsWriter; rows are asked for in
// increasing order.
func (p *pqStatsPrefetch) get(row int) (string, StatsRef, error) {
	for row >= p.base+len(p.cur)+len(p.refs) {
		if p.err != nil {
			return "", StatsRef{}, p.err
		}
		c, ok := <-p.ch
		if !ok {
			p.err = errors.New("add.stats: fewer values than rows")
			return "", StatsRef{}, p.err
		}
		if c.err != nil {
			p.err = c.err
			return "", StatsRef{}, p.err
		}
		p.base += len(p.cur) + len(p.refs)
		p.cur, p.refs = c.vals, c.refs
	}
	switch {
	case row < p.base:
		return "", StatsRef{}, nil
	case p.refs != nil:
		return "", p.refs[row-p.base], nil
	}
	return p.cur[row-p.base], StatsRef{}, nil
}

// stop ends the goroutine and waits for it: it reads the file, which the caller may close once
// Decode returns.
func (p *pqStatsPrefetch) stop() {
	if !p.closed {
		p.closed = true
		close(p.quit)
	}
	<-p.done
}

// ---- stats_parsed --------------------------------------------------------------------------------

// pqParsedStats reads add.stats_parsed of one row group through Arrow, batch by batch, in step
// with the rows the decoder is at.
type pqParsedStats struct {
	rr   pqarrow.RecordReader
	json *pqStatsJSON
	base int // row of the current batch's first row
	n    int
}

const pqParsedBatchRows = 1 << 14

func (d *pqDecoder) openParsedStats(rg int) (*pqParsedStats, error) {
	if d.fr == nil {
		fr, err := pqarrow.NewFileReader(d.pf, pqarrow.ArrowReadProperties{BatchSize: pqParsedBatchRows}, memory.DefaultAllocator)
		if err != nil {
			return nil, fmt.Errorf("add.stats_parsed: %w", err)
		}
		d.fr = fr
	}
	sch := d.pf.MetaData().Schema
	var leaves []int
	for i := 0; i < sch.NumColumns(); i++ {
		p := sch.Column(i).ColumnPath()
		if len(p) > 2 && p[0] == "add" && p[1] == "stats_parsed" {
			leaves = append(leaves, i)
		}
	}
	if len(leaves) == 0 {
		return nil, nil
	}
	rr, err := d.fr.GetRecordReader(context.Background(), leaves, []int{rg})
	if err != nil {
		return nil, fmt.Errorf("add.stats_parsed: %w", err)
	}
	return &pqParsedStats{rr: rr}, nil
}

func (p *pqParsedStats) release() {
	if p.rr != nil {
		p.rr.Release()
	}
}

// get is the JSON stats of the row ("" when stats_parsed is null there).
func (p *pqParsedStats) get(row int) (string, error) {
	for row >= p.base+p.n {
		if !p.rr.Next() {
			if err := p.rr.Err(); err != nil {
				return "", fmt.Errorf("add.stats_parsed: %w", err)
			}
			return "", errors.New("add.stats_parsed: fewer rows than the row group")
		}
		rec := p.rr.RecordBatch()
		p.base += p.n
		p.n = int(rec.NumRows())
		p.json = nil
		if idx := rec.Schema().FieldIndices("add"); len(idx) > 0 {
			if add, ok := rec.Column(idx[0]).(*array.Struct); ok {
				typ := add.DataType().(*arrow.StructType)
				if i, ok := typ.FieldIdx("stats_parsed"); ok {
					if sp, ok := add.Field(i).(*array.Struct); ok {
						p.json = newPQStatsJSON(sp)
					}
				}
			}
		}
	}
	if p.json == nil || row < p.base {
		return "", nil
	}
	return p.json.get(row - p.base), nil
}

// ---- allocation helpers ----------------------------------------------------------------------

// pqArena holds the bytes of decoded strings: each string is copied once, into a chunk that is
// never written again where a string points, and the strings share the chunks.
type pqArena struct{ buf []byte }

const pqArenaChunk = 1 << 20

func (a *pqArena) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > cap(a.buf)-len(a.buf) {
		if len(b) > pqArenaChunk/8 {
			return string(b)
		}
		a.buf = make([]byte, 0, pqArenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[start], len(b))
}

// pqSlab hands out pointers into chunks of T, so that a million adds cost a thousand allocations.
type pqSlab[T any] struct{ buf []T }

func (s *pqSlab[T]) alloc() *T {
	if len(s.buf) == 0 {
		s.buf = make([]T, 1024)
	}
	p := &s.buf[0]
	s.buf = s.buf[1:]
	return p
}

const (
	pqInternMaxEntries = 1 << 16
	pqInternMaxLen     = 256
)

// pqInterner dedups the strings of partition values and tags: a table's files share a few
// partition keys and, mostly, few partition values.
type pqInterner struct {
	strs map[string]string
	ptrs map[string]*string
}

func newPQInterner() *pqInterner {
	return &pqInterner{strs: map[string]string{}, ptrs: map[string]*string{}}
}

func (in *pqInterner) str(b []byte) string {
	if s, ok := in.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(b) <= pqInternMaxLen {
		if len(in.strs) >= pqInternMaxEntries {
			clear(in.strs)
		}
		in.strs[s] = s
	}
	return s
}

func (in *pqInterner) ptr(b []byte) *string {
	if p, ok := in.ptrs[string(b)]; ok {
		return p
	}
	s := in.str(b)
	p := &s
	if len(b) <= pqInternMaxLen {
		if len(in.ptrs) >= pqInternMaxEntries {
			clear(in.ptrs)
		}
		in.ptrs[s] = p
	}
	return p
}
