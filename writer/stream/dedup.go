package stream

import (
	"bytes"
	"context"
	"fmt"
	"net/url"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"gocloud.dev/gcerrors"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// idSet is a bounded set of event ids: past its capacity the oldest ids are forgotten first.
type idSet struct {
	m    map[string]struct{}
	ring []string
	next int
}

func newIDSet(capacity int) *idSet {
	return &idSet{m: make(map[string]struct{}, min(capacity, 1<<16)), ring: make([]string, capacity)}
}

func (s *idSet) has(id string) bool { _, ok := s.m[id]; return ok }

func (s *idSet) add(id string) {
	if _, ok := s.m[id]; ok {
		return
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.m, old)
	}
	s.ring[s.next] = id
	s.m[id] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
}

func (s *idSet) len() int { return len(s.m) }

// logScan reads the event ids of one table's latest stream commits: the table's event_id column,
// or the event_id inside the quarantine table's raw records.
type logScan struct {
	t       *table.Table
	scanned int64 // the newest version read
	column  string
	raw     bool // column holds raw JSON records: peek their event_id
}

// refresh reads the stream commits made since the last scan of each table.
func (c *Committer) refresh(ctx context.Context) (int, error) {
	if c.qt == nil { // the sink creates the quarantine table with the first refused record
		if qt, err := table.Open(ctx, c.opts.QuarantineURI, nil); err == nil {
			c.qt = qt
			c.scans = append(c.scans, &logScan{t: qt, scanned: -1, column: "raw", raw: true})
		}
	}
	n := 0
	for _, ls := range c.scans {
		k, err := c.scan(ctx, ls)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// scan reads, newest first, the commits from the latest down to ls.scanned+1 (at most
// LookbackVersions of them), and adds the event ids of the data files added by stream commits
// (commits whose commitInfo names a committer): on the first scan those of the latest
// LookbackCommits of them, later every one since the previous scan. It returns how many ids it
// added.
func (c *Committer) scan(ctx context.Context, ls *logScan) (int, error) {
	snap, err := ls.t.Snapshot(ctx)
	if err != nil {
		return 0, err
	}
	latest := snap.Version()
	lowest := max(ls.scanned+1, latest-int64(c.opts.LookbackVersions)+1, 0)
	limit := c.opts.LookbackCommits
	if ls.scanned >= 0 {
		limit = c.opts.LookbackVersions
	}
	var paths []string
	found := 0
	for v := latest; v >= lowest && found < limit; v-- {
		data, err := ls.t.Bucket().ReadAll(ctx, txlog.CommitKey(v))
		if err != nil {
			if gcerrors.Code(err) == gcerrors.NotFound {
				break // cleaned up after a checkpoint: nothing older is readable either
			}
			return 0, err
		}
		acts, err := txlog.DecodeActions(data)
		if err != nil {
			return 0, fmt.Errorf("commit %d: %w", v, err)
		}
		stream := false
		for _, a := range acts {
			if a.CommitInfo != nil {
				_, stream = a.CommitInfo.OperationParameters[CommitterParam]
			}
		}
		if !stream {
			continue
		}
		found++
		for _, a := range acts {
			if a.Add != nil && a.Add.DataChange {
				paths = append(paths, a.Add.Path)
			}
		}
	}
	col := ls.column
	if f, ok := snap.Schema().Field(ls.column); ok {
		col = f.PhysicalName()
	}
	n := 0
	for _, p := range paths {
		vals, err := fileColumn(ctx, ls.t, p, col)
		if err != nil {
			return n, err
		}
		for _, v := range vals {
			if ls.raw {
				v = peekID([]byte(v))
			}
			if v != "" && !c.recent.has(v) {
				c.recent.add(v)
				n++
			}
		}
	}
	if latest > ls.scanned {
		ls.scanned = latest
	}
	return n, nil
}

// fileColumn reads a string column of one data file (its physical name).
func fileColumn(ctx context.Context, t *table.Table, addPath, col string) ([]string, error) {
	key, err := url.PathUnescape(addPath)
	if err != nil {
		return nil, fmt.Errorf("data file %s: %w", addPath, err)
	}
	data, err := t.Bucket().ReadAll(ctx, key)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, nil // vacuumed or compacted away
		}
		return nil, fmt.Errorf("data file %s: %w", key, err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("data file %s: %w", key, err)
	}
	defer pf.Close()
	idx := pf.MetaData().Schema.ColumnIndexByName(col)
	if idx < 0 {
		return nil, fmt.Errorf("data file %s has no %s column", key, col)
	}
	var out []string
	for rg := 0; rg < pf.NumRowGroups(); rg++ {
		cr, err := pf.RowGroup(rg).Column(idx)
		if err != nil {
			return nil, err
		}
		br, ok := cr.(*file.ByteArrayColumnChunkReader)
		if !ok {
			return nil, fmt.Errorf("data file %s: %s is not a string column", key, col)
		}
		n := pf.RowGroup(rg).NumRows()
		vals := make([]parquet.ByteArray, n)
		defs := make([]int16, n)
		got := 0
		for read := int64(0); read < n; {
			levels, nv, err := br.ReadBatch(n-read, vals[got:], defs[read:], nil)
			if err != nil {
				return nil, fmt.Errorf("data file %s: %w", key, err)
			}
			if levels == 0 {
				break
			}
			read += levels
			got += nv
		}
		for _, v := range vals[:got] {
			out = append(out, string(v))
		}
	}
	return out, nil
}
