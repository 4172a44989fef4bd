package source

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

// SinkOptions configure a Sink.
type SinkOptions struct {
	// Mode and Where are the table's write mode (Append by default); the quarantine table is
	// always appended to.
	Mode  writer.Mode
	Where []writer.PartitionPredicate
	// MergeSchema lets batches add columns to the table (tables other than the interaction table).
	MergeSchema bool
	// OperationParameters are recorded in both commits' commitInfo.
	OperationParameters map[string]any
	// Writer holds further writer options (file size, compression, allocator, ...); its Mode,
	// Where, AppID and Snapshot are set by the Sink.
	Writer *writer.Options
}

// Sink commits standardised batches to a table and its quarantine table.
//
// A commit of a batch is idempotent and crash-safe: both tables' commits carry the txn
// (appID, version); the quarantine table's commit comes first and the table's last, and a commit
// is skipped when its table already records appID at version or later. So a batch whose process
// died between the two commits is, when given again with the same appID and version, committed
// to the table only; one that died before either is committed to both; one that died after both
// is skipped. The caller must give versions that increase per appID and the same batch for the
// same version.
//
// A Sink may be used by one goroutine at a time.
type Sink struct {
	t    *table.Table
	qURI string
	opts SinkOptions

	mu struct {
		sync.Mutex
		q    *table.Table
		snap *txlog.Snapshot
	}
}

// OpenSink returns a Sink into t whose refused records go to the table at quarantineURI (created
// with QuarantineSchema, partitioned by ingest_date, the first time a record is refused).
func OpenSink(ctx context.Context, t *table.Table, quarantineURI string, opts *SinkOptions) (*Sink, error) {
	k := &Sink{t: t, qURI: quarantineURI}
	if opts != nil {
		k.opts = *opts
	}
	if quarantineURI == "" {
		return nil, errors.New("source: a Sink needs a quarantine table URI")
	}
	if quarantineURI == t.URI() {
		return nil, errors.New("source: the quarantine table must not be the table itself")
	}
	return k, nil
}

// quarantineTable opens (or creates) the quarantine table.
func (k *Sink) quarantineTable(ctx context.Context) (*table.Table, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.q != nil {
		return k.mu.q, nil
	}
	q, err := table.Open(ctx, k.qURI, nil)
	if errors.Is(err, txlog.ErrNotATable) {
		q, err = table.Create(ctx, k.qURI, QuarantineSchema(), &table.CreateOptions{
			PartitionColumns: []string{QuarantinePartitionColumn}, Description: "records refused by lake ingest"})
		if err != nil { // another process may have created it at the same moment
			if q2, err2 := table.Open(ctx, k.qURI, nil); err2 == nil {
				q, err = q2, nil
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("quarantine table %s: %w", k.qURI, err)
	}
	snap, err := q.Snapshot(ctx)
	if err != nil {
		q.Close()
		return nil, fmt.Errorf("quarantine table %s: %w", k.qURI, err)
	}
	if _, ok := snap.Schema().Field("reason"); !ok {
		q.Close()
		return nil, fmt.Errorf("quarantine table %s is not a quarantine table (it has no reason column): name another with --quarantine", k.qURI)
	}
	k.mu.q = q
	return q, nil
}

// snapshot returns the table's latest snapshot, read incrementally.
func (k *Sink) snapshot(ctx context.Context) (*txlog.Snapshot, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var err error
	if k.mu.snap == nil {
		k.mu.snap, err = k.t.Snapshot(ctx)
	} else {
		k.mu.snap, err = k.t.Update(ctx, k.mu.snap)
	}
	return k.mu.snap, err
}

// Has reports whether the table records appID at version or later.
func (k *Sink) Has(ctx context.Context, appID string, version int64) (bool, error) {
	snap, err := k.snapshot(ctx)
	if err != nil {
		return false, err
	}
	v, ok := snap.AppTransactionVersion(appID)
	return ok && v >= version, nil
}

// Close closes the quarantine table the Sink opened (not the table).
func (k *Sink) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.q != nil {
		err := k.mu.q.Close()
		k.mu.q = nil
		return err
	}
	return nil
}

// CommitResult says what a commit did.
type CommitResult struct {
	// Version is the table's version after the commit (the version read when nothing was
	// committed); QuarantineVersion the quarantine table's (-1 when it was not written).
	Version           int64
	QuarantineVersion int64
	// Skipped is true when the table already had appID at this version: nothing was written.
	Skipped bool
	// Committed is true when the table got a new version (false for a skipped batch, and for an
	// empty one without an appID).
	Committed bool
	Counts    Counts
}

// Commit commits one batch (see Sink for the guarantees).
func (k *Sink) Commit(ctx context.Context, b *Batch, appID string, version int64, params map[string]any) (CommitResult, error) {
	c, err := k.Begin(ctx, appID, version)
	if err != nil {
		return CommitResult{}, err
	}
	if err := c.Write(ctx, b); err != nil {
		c.Abort(ctx)
		return CommitResult{}, err
	}
	return c.Finish(ctx, params)
}

// Pending is a commit of many batches under way: Write them, then Finish or Abort.
type Pending struct {
	k       *Sink
	appID   string
	version int64
	main    *writer.Writer
	quar    *writer.Writer
	skipped bool
	counts  Counts
}

// Begin starts the commit of appID at version. When the table already records it, the Pending
// is skipped: Write discards and Finish reports Skipped.
func (k *Sink) Begin(ctx context.Context, appID string, version int64) (*Pending, error) {
	snap, err := k.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	p := &Pending{k: k, appID: appID, version: version}
	if appID != "" {
		if v, ok := snap.AppTransactionVersion(appID); ok && v >= version {
			p.skipped = true
			return p, nil
		}
	}
	o := k.writerOptions()
	o.Mode, o.Where, o.MergeSchema, o.Snapshot = k.opts.Mode, k.opts.Where, k.opts.MergeSchema, snap
	if appID != "" { // no appID (stdin without an idempotency key): no txn
		o.AppID, o.AppVersion = appID, version
	}
	if p.main, err = writer.New(ctx, k.t, o); err != nil {
		return nil, err
	}
	if p.main.Skipped() {
		p.skipped = true
	}
	return p, nil
}

func (k *Sink) writerOptions() *writer.Options {
	var o writer.Options
	if k.opts.Writer != nil {
		o = *k.opts.Writer
	}
	o.OperationParameters = maps.Clone(o.OperationParameters)
	if o.OperationParameters == nil {
		o.OperationParameters = map[string]any{}
	}
	maps.Copy(o.OperationParameters, k.opts.OperationParameters)
	return &o
}

// Skipped reports whether the table already has this commit.
func (p *Pending) Skipped() bool { return p.skipped }

// Counts are the counts of the batches written so far.
func (p *Pending) Counts() Counts { return p.counts }

// Write adds a batch's rows and refused records to the commit. It does not keep b; the caller
// releases it.
func (p *Pending) Write(ctx context.Context, b *Batch) error {
	p.counts.Add(b.Counts)
	if p.skipped {
		return nil
	}
	if b.Rows != nil && b.Rows.NumRows() > 0 {
		if err := p.main.Write(ctx, b.Rows); err != nil {
			return err
		}
	}
	if b.Quarantine != nil && b.Quarantine.NumRows() > 0 {
		if p.quar == nil {
			q, err := p.k.quarantineTable(ctx)
			if err != nil {
				return err
			}
			o := p.k.writerOptions()
			o.Mode, o.Where, o.MergeSchema, o.Snapshot = writer.Append, nil, false, nil
			if p.appID != "" {
				o.AppID, o.AppVersion = p.appID, p.version
			}
			o.OperationParameters["table"] = p.k.t.URI()
			if p.quar, err = writer.New(ctx, q, o); err != nil {
				return err
			}
		}
		if err := p.quar.Write(ctx, b.Quarantine); err != nil {
			return err
		}
	}
	return nil
}

// MarkDone records, in the table's commit, the txn (appID, version) beside the batch's own: a
// marker that the last batch of a multi-batch unit (a file) is in, so that a later run can skip
// the unit without reading it.
func (p *Pending) MarkDone(appID string, version int64) {
	if p.main != nil && !p.skipped {
		p.main.AddAppTransaction(appID, version)
	}
}

// Finish commits: the quarantine table first, then the table. params and the counts go into
// both commits' commitInfo.
func (p *Pending) Finish(ctx context.Context, params map[string]any) (CommitResult, error) {
	res := CommitResult{QuarantineVersion: -1, Counts: p.counts, Skipped: p.skipped}
	if p.skipped {
		if p.main != nil {
			r, err := p.main.Close(ctx)
			if err == nil {
				res.Version = r.Version
			}
		}
		if p.quar != nil {
			p.quar.Abort(ctx)
		}
		return res, nil
	}
	metrics := map[string]any{
		"numSourceRows":       strconv.FormatInt(p.counts.Read, 10),
		"numQuarantinedRows":  strconv.FormatInt(p.counts.Quarantined, 10),
		"numDuplicateRows":    strconv.FormatInt(p.counts.Duplicate, 10),
		"numStandardisedRows": strconv.FormatInt(p.counts.Written, 10),
	}
	if p.quar != nil {
		p.quar.SetCommitInfo(params, metrics)
		r, err := p.quar.Close(ctx)
		p.quar = nil
		if err != nil {
			p.main.Abort(context.WithoutCancel(ctx))
			return res, fmt.Errorf("quarantine table %s: %w", p.k.qURI, err)
		}
		res.QuarantineVersion = r.Version
	}
	p.main.SetCommitInfo(params, metrics)
	r, err := p.main.Close(ctx)
	if err != nil {
		return res, err
	}
	res.Version = r.Version
	res.Committed = r.Committed
	if r.Skipped {
		res.Skipped = true
	}
	return res, nil
}

// Abort abandons the commit: nothing is committed and the files written are removed.
func (p *Pending) Abort(ctx context.Context) {
	if p.main != nil {
		p.main.Abort(ctx)
	}
	if p.quar != nil {
		p.quar.Abort(ctx)
	}
}
