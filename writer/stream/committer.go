package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"gocloud.dev/pubsub"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
	"github.com/lakehouse/lake/writer/source"
)

// ackDeadline is how long a mem:// message may stay unacked before it is redelivered.
const ackDeadline = 2 * time.Minute

// ReceivedKey is the message metadata key holding the time the collector received the event, in
// epoch milliseconds (server.ReceivedKey); the committer reports queue lag from it.
const ReceivedKey = "lake-received"

// CommitterParam is the operation parameter every stream commit records: the committer's name.
// Committers find each other's commits by it when they de-duplicate.
const CommitterParam = "committer"

// Options configure a Committer. The zero value is usable.
type Options struct {
	// Name is the committer's name: the appId of its txn actions. Default "lake-stream". Two
	// running committers must not share a name.
	Name string
	// BatchRows flushes a batch at this many messages (default 10,000).
	BatchRows int
	// BatchInterval flushes a batch this long after its first message arrived (default 1 s).
	BatchInterval time.Duration
	// Source is the source of events that name none (default "collector").
	Source string
	// QuarantineURI is the quarantine table (default: source.QuarantineURI of the table's URI).
	QuarantineURI string
	// RecentIDs bounds the event ids kept in memory for de-duplication (default 1,000,000).
	RecentIDs int
	// LookbackCommits is how many of the latest stream commits (any committer's) are read for
	// their event ids at start and when redeliveries arrive (default 16); LookbackVersions bounds
	// how many table versions are searched for them (default 400).
	LookbackCommits  int
	LookbackVersions int
	// DrainOnStop, when Run's context ends, keeps consuming until the queue has been quiet for
	// DrainQuiet (default 300 ms; at most 30 s in all), then commits and returns. For the
	// embedded mem:// queue, whose content dies with the process.
	DrainOnStop bool
	DrainQuiet  time.Duration
	// OnCommit, if set, is called after every batch (committed or all duplicates).
	OnCommit func(BatchResult)
	// Logger gets one line per commit and per retry; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Name == "" {
		c.Name = "lake-stream"
	}
	if c.BatchRows == 0 {
		c.BatchRows = 10000
	}
	if c.BatchInterval == 0 {
		c.BatchInterval = time.Second
	}
	if c.Source == "" {
		c.Source = "collector"
	}
	if c.RecentIDs == 0 {
		c.RecentIDs = 1 << 20
	}
	if c.LookbackCommits == 0 {
		c.LookbackCommits = 16
	}
	if c.LookbackVersions == 0 {
		c.LookbackVersions = 400
	}
	if c.DrainQuiet == 0 {
		c.DrainQuiet = 300 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	switch {
	case c.BatchRows < 0:
		return c, errors.New("stream: BatchRows must be positive")
	case c.BatchInterval < 0:
		return c, errors.New("stream: BatchInterval must be positive")
	case c.RecentIDs < c.BatchRows:
		return c, fmt.Errorf("stream: RecentIDs (%d) must hold at least one batch (%d)", c.RecentIDs, c.BatchRows)
	case c.LookbackCommits < 0 || c.LookbackVersions < 0:
		return c, errors.New("stream: LookbackCommits and LookbackVersions must be positive")
	}
	return c, nil
}

// BatchResult is what one batch did.
type BatchResult struct {
	Committer string
	// Sequence is the batch's txn version; Version the table version of its commit, -1 when
	// nothing was committed (every message a duplicate).
	Sequence, Version int64
	Messages          int   // messages in the batch
	Read              int64 // records the standardiser read
	Written           int64 // rows committed to the table
	Quarantined       int64 // rows committed to the quarantine table
	Duplicate         int64 // dropped by event_id (redeliveries and repeats)
	// Lag is the age of the batch's oldest event at the commit, from the collector's receive time.
	Lag time.Duration
}

// Committer consumes a subscription into a table. See the package comment.
type Committer struct {
	t      *table.Table
	sub    *pubsub.Subscription
	opts   Options
	sink   *source.Sink
	seq    int64 // the next batch's txn version
	recent *idSet
	// scans read the latest stream commits of the table and of the quarantine table for ids.
	scans []*logScan
	qt    *table.Table // the quarantine table, once it exists
	// afterCommit, when set (tests), runs between the commit and the acks; an error stops the
	// committer there, as a crash would: the batch is neither acked nor nacked.
	afterCommit func() error
}

// New prepares a committer of sub into t: it opens the sink (creating the quarantine table if
// missing), finds the next batch sequence, and reads the event ids of the latest stream commits.
// The caller keeps ownership of t and sub; Close closes the sink.
func New(ctx context.Context, t *table.Table, sub *pubsub.Subscription, opts *Options) (*Committer, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.QuarantineURI == "" {
		if o.QuarantineURI, err = source.QuarantineURI(t.URI()); err != nil {
			return nil, err
		}
	}
	sink, err := source.OpenSink(ctx, t, o.QuarantineURI, &source.SinkOptions{
		// One encoding goroutine: a micro-batch is small, and in `lake serve` the collector's
		// requests share the cores (a batch encoded on every core stalls them: pixel p99).
		Writer: &writer.Options{Operation: "STREAMING UPDATE", Parallelism: 1},
	})
	if err != nil {
		return nil, err
	}
	c := &Committer{t: t, sub: sub, opts: o, sink: sink, recent: newIDSet(o.RecentIDs)}
	c.scans = []*logScan{{t: t, scanned: -1, column: "event_id"}}
	if err := c.start(ctx); err != nil {
		sink.Close()
		return nil, err
	}
	return c, nil
}

// start finds the next sequence: one past the largest version the table or the quarantine table
// records for the name (the quarantine table is committed first, so it may be one ahead after a
// crash; reusing its version would make the sink skip the new batch's quarantined rows).
func (c *Committer) start(ctx context.Context) error {
	snap, err := c.t.Snapshot(ctx)
	if err != nil {
		return err
	}
	next := int64(0)
	if v, ok := snap.AppTransactionVersion(c.opts.Name); ok {
		next = v + 1
	}
	if qt, err := table.Open(ctx, c.opts.QuarantineURI, nil); err == nil {
		qs, err := qt.Snapshot(ctx)
		if err != nil {
			qt.Close()
			return err
		}
		if v, ok := qs.AppTransactionVersion(c.opts.Name); ok && v+1 > next {
			next = v + 1
		}
		c.qt = qt
		c.scans = append(c.scans, &logScan{t: qt, scanned: -1, column: "raw", raw: true})
	} else if !errors.Is(err, txlog.ErrNotATable) {
		return fmt.Errorf("quarantine table %s: %w", c.opts.QuarantineURI, err)
	}
	c.seq = next
	n, err := c.refresh(ctx)
	if err != nil {
		return fmt.Errorf("read the event ids of the latest stream commits: %w", err)
	}
	c.opts.Logger.Info("committer ready", "name", c.opts.Name, "next_sequence", c.seq, "table_version", snap.Version(), "recent_ids", n)
	return nil
}

// Close closes the sink. It does not shut the subscription down.
func (c *Committer) Close() error {
	err := c.sink.Close()
	if c.qt != nil {
		err = errors.Join(err, c.qt.Close())
	}
	return err
}

// Name is the committer's name (its txn appId).
func (c *Committer) Name() string { return c.opts.Name }

// Run consumes until ctx ends (then it commits what it holds, or drains with DrainOnStop) or
// the subscription fails. It returns nil after a clean stop. An error from a commit that could
// not be retried leaves the batch unacked: the queue redelivers it.
func (c *Committer) Run(ctx context.Context) error {
	rctx, stopReceiving := context.WithCancel(context.Background())
	defer stopReceiving()
	msgs := make(chan *pubsub.Message, c.opts.BatchRows)
	recvErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		for {
			m, err := c.sub.Receive(rctx)
			if err != nil {
				if rctx.Err() == nil {
					recvErr <- err
				}
				return
			}
			select {
			case msgs <- m:
			case <-rctx.Done():
				if m.Nackable() {
					m.Nack()
				}
				return
			}
		}
	}()

	var batch []*pubsub.Message
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func(fctx context.Context) error {
		timer.Stop()
		if len(batch) == 0 {
			return nil
		}
		err := c.commit(fctx, batch)
		batch = batch[:0]
		return err
	}
	add := func(m *pubsub.Message) {
		if len(batch) == 0 {
			timer.Reset(c.opts.BatchInterval)
		}
		batch = append(batch, m)
	}
	done := ctx.Done()
	var quiet *time.Timer
	var quietC, drainLimit <-chan time.Time
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				// The receiver stopped: a subscription error, or the end of a drain.
				err := flush(context.WithoutCancel(ctx))
				select {
				case rerr := <-recvErr:
					return errors.Join(fmt.Errorf("receive from the queue: %w", rerr), err)
				default:
					return err
				}
			}
			add(m)
			if quiet != nil {
				quiet.Reset(c.opts.DrainQuiet)
			}
			if len(batch) >= c.opts.BatchRows {
				if err := flush(context.WithoutCancel(ctx)); err != nil {
					c.abandon(msgs)
					return err
				}
			}
		case <-timer.C:
			if err := flush(context.WithoutCancel(ctx)); err != nil {
				c.abandon(msgs)
				return err
			}
		case <-done:
			done = nil
			if !c.opts.DrainOnStop {
				stopReceiving()
				break
			}
			quiet = time.NewTimer(c.opts.DrainQuiet)
			quietC = quiet.C
			drainLimit = time.After(30 * time.Second)
		case <-quietC:
			quietC = nil
			stopReceiving()
		case <-drainLimit:
			quietC = nil
			stopReceiving()
		}
	}
}

// abandon nacks whatever the receiver still delivers after a failed commit, so the queue can
// hand it to another committer at once.
func (c *Committer) abandon(msgs <-chan *pubsub.Message) {
	go func() {
		for m := range msgs {
			if m.Nackable() {
				m.Nack()
			}
		}
	}()
}

// peekID reads a message's event_id without decoding the rest: a byte scan for the common case
// (a top-level "event_id" string without escapes), encoding/json for anything else.
func peekID(body []byte) string {
	key := []byte(`"event_id"`)
	i := bytes.Index(body, key)
	if i < 0 {
		return ""
	}
	if bytes.Count(body, key) == 1 && bytes.IndexByte(body, '\\') < 0 && len(body) > 0 && body[0] == '{' {
		rest := bytes.TrimLeft(body[i+len(key):], " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			rest = bytes.TrimLeft(rest[1:], " \t\r\n")
			if len(rest) > 0 && rest[0] == '"' {
				if end := bytes.IndexByte(rest[1:], '"'); end >= 0 && isTopLevel(body, i) {
					return string(rest[1 : 1+end])
				}
			}
		}
	}
	var v struct {
		EventID json.RawMessage `json:"event_id"`
	}
	if json.Unmarshal(body, &v) != nil || len(v.EventID) == 0 || v.EventID[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(v.EventID, &s) != nil {
		return ""
	}
	return s
}

// isTopLevel reports whether offset i of a JSON object without escapes is at nesting depth 1
// and outside a string.
func isTopLevel(body []byte, i int) bool {
	depth, inString := 0, false
	for _, ch := range body[:i] {
		switch {
		case ch == '"':
			inString = !inString
		case inString:
		case ch == '{' || ch == '[':
			depth++
		case ch == '}' || ch == ']':
			depth--
		}
	}
	return depth == 1 && !inString
}

func redelivered(m *pubsub.Message) bool {
	var d amqp.Delivery
	return m.As(&d) && d.Redelivered
}

// commit standardises, commits and acks one batch; on failure it nacks the batch.
func (c *Committer) commit(ctx context.Context, batch []*pubsub.Message) error {
	res := BatchResult{Committer: c.opts.Name, Sequence: c.seq, Version: -1, Messages: len(batch)}
	now := c.opts.Now()
	var oldest int64 = -1
	again := false
	for _, m := range batch {
		again = again || redelivered(m)
		if ms, err := strconv.ParseInt(m.Metadata[ReceivedKey], 10, 64); err == nil && (oldest < 0 || ms < oldest) {
			oldest = ms
		}
	}
	if again {
		// A crashed committer may have committed these: read the stream commits made since we
		// last looked.
		if _, err := c.refresh(ctx); err != nil {
			c.nack(batch)
			return fmt.Errorf("read the latest stream commits for redelivered messages: %w", err)
		}
	}
	st, err := source.NewStandardizer(&source.Options{
		Source: c.opts.Source, TimestampFormat: source.TimestampRFC3339OrEpochMS, Now: c.opts.Now,
	})
	if err != nil {
		c.nack(batch)
		return err
	}
	defer st.Close()
	ids := make([]string, 0, len(batch))
	for _, m := range batch {
		id := peekID(m.Body)
		if id != "" {
			if c.recent.has(id) {
				res.Duplicate++
				continue
			}
			ids = append(ids, id)
		}
		if err := st.AddJSON(m.Body, source.Position{}); err != nil {
			c.nack(batch)
			return err
		}
	}
	b, err := st.Flush()
	if err != nil {
		c.nack(batch)
		return err
	}
	defer b.Release()
	res.Read = b.Counts.Read
	res.Written = b.Counts.Written
	res.Quarantined = b.Counts.Quarantined
	res.Duplicate += b.Counts.Duplicate
	if b.Rows != nil || b.Quarantine != nil {
		cr, err := c.commitWithRetry(ctx, b, res)
		if err != nil {
			c.nack(batch)
			return err
		}
		res.Version = cr.Version
		c.seq++
		if ls := c.scans[0]; ls.scanned == cr.Version-1 {
			ls.scanned = cr.Version // nothing of another committer in between
		}
	}
	if c.afterCommit != nil {
		if err := c.afterCommit(); err != nil {
			return err
		}
	}
	for _, id := range b.EventIDs() {
		c.recent.add(id)
	}
	for _, id := range ids {
		c.recent.add(id)
	}
	for _, m := range batch {
		m.Ack()
	}
	if oldest >= 0 {
		res.Lag = c.opts.Now().Sub(time.UnixMilli(oldest))
	} else {
		res.Lag = c.opts.Now().Sub(now)
	}
	c.opts.Logger.Info("batch", "committer", res.Committer, "sequence", res.Sequence, "version", res.Version,
		"messages", res.Messages, "written", res.Written, "quarantined", res.Quarantined, "duplicate", res.Duplicate, "lag", res.Lag)
	if c.opts.OnCommit != nil {
		c.opts.OnCommit(res)
	}
	return nil
}

func (c *Committer) nack(batch []*pubsub.Message) {
	for _, m := range batch {
		if m.Nackable() {
			m.Nack()
		}
	}
}

// commitWithRetry commits b as batch c.seq, retrying failures that may pass (a storage hiccup,
// conflicts exhausted) with a doubling, ctx-aware wait. A retry that finds its sequence already
// recorded means the previous attempt landed (unknown outcome): that is success.
func (c *Committer) commitWithRetry(ctx context.Context, b *source.Batch, res BatchResult) (source.CommitResult, error) {
	params := map[string]any{CommitterParam: c.opts.Name, "batch": strconv.FormatInt(c.seq, 10)}
	wait := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		cr, err := c.sink.Commit(ctx, b, c.opts.Name, c.seq, params)
		if err == nil {
			if cr.Skipped && attempt == 0 {
				return cr, fmt.Errorf("%w: the table already records batch %d of committer %q; is another committer running with --name %s?",
					ErrNameInUse, c.seq, c.opts.Name, c.opts.Name)
			}
			return cr, nil
		}
		if nameConflict(err) {
			return cr, fmt.Errorf("%w: another committer named %q committed at the same time: %v", ErrNameInUse, c.opts.Name, err)
		}
		if !retryable(err) || attempt >= 8 {
			return cr, fmt.Errorf("commit batch %d of committer %q: %w", c.seq, c.opts.Name, err)
		}
		c.opts.Logger.Warn("commit failed; retrying", "committer", c.opts.Name, "sequence", c.seq, "attempt", attempt+1, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return cr, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}
