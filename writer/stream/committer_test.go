package stream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/mempubsub"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer/stream"
)

var tableSeq struct {
	sync.Mutex
	n int
}

func newTable(t *testing.T) *table.Table {
	t.Helper()
	tableSeq.Lock()
	tableSeq.n++
	n := tableSeq.n
	tableSeq.Unlock()
	uri := fmt.Sprintf("mem://stream-test-%d-%d/events", time.Now().UnixNano(), n)
	tbl, err := table.Create(context.Background(), uri, table.InteractionSchema(), &table.CreateOptions{PartitionColumns: []string{table.InteractionPartitionColumn}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close() })
	return tbl
}

func event(i int) []byte {
	b, _ := json.Marshal(map[string]any{
		"event_id": fmt.Sprintf("ev-%06d", i), "user_id": fmt.Sprintf("u%d", i%7), "item_id": fmt.Sprintf("i%d", i%11),
		"interaction_type": "view", "timestamp": time.Now().Add(-time.Duration(i) * time.Second).UnixMilli(), "source": "collector",
	})
	return b
}

func publish(t *testing.T, topic *pubsub.Topic, from, to int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, to-from)
	for i := from; i < to; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- topic.Send(ctx, &pubsub.Message{Body: event(i), Metadata: map[string]string{stream.ReceivedKey: fmt.Sprint(time.Now().UnixMilli())}})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// eventIDs scans the table's event_id column.
func eventIDs(t *testing.T, tbl *table.Table) []string {
	t.Helper()
	ctx := context.Background()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := reader.NewScan(ctx, tbl, snap, &reader.ScanOptions{Columns: []string{"event_id"}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rec, err := range sc.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		col := rec.Column(0).(*array.String)
		for i := range col.Len() {
			ids = append(ids, col.Value(i))
		}
	}
	return ids
}

// exactlyOnce checks the table holds ev-from..ev-to-1, each once.
func exactlyOnce(t *testing.T, tbl *table.Table, n int) {
	t.Helper()
	ids := eventIDs(t, tbl)
	seen := map[string]int{}
	for _, id := range ids {
		seen[id]++
	}
	dups := 0
	for _, c := range seen {
		if c > 1 {
			dups++
		}
	}
	if len(ids) != n || len(seen) != n || dups != 0 {
		t.Fatalf("table has %d rows, %d distinct ids (%d duplicated); want %d each once", len(ids), len(seen), dups, n)
	}
	for i := range n {
		if seen[fmt.Sprintf("ev-%06d", i)] != 1 {
			t.Fatalf("ev-%06d missing", i)
		}
	}
}

type results struct {
	mu sync.Mutex
	rs []stream.BatchResult
	ch chan stream.BatchResult
}

func newResults() *results { return &results{ch: make(chan stream.BatchResult, 1000)} }

func (r *results) on(b stream.BatchResult) {
	r.mu.Lock()
	r.rs = append(r.rs, b)
	r.mu.Unlock()
	r.ch <- b
}

// waitWritten waits until the batches report n rows written (or quarantined) in all.
func (r *results) waitRows(t *testing.T, n int64, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	var got int64
	for got < n {
		select {
		case b := <-r.ch:
			got += b.Written + b.Quarantined + b.Duplicate
		case <-deadline:
			t.Fatalf("after %v: %d of %d rows handled", within, got, n)
		}
	}
}

func start(t *testing.T, c *stream.Committer) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after its context ended")
			return nil
		}
	}
}

func TestBatchByCount(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	topic := mempubsub.NewTopic()
	sub := mempubsub.NewSubscription(topic, time.Minute)
	defer topic.Shutdown(ctx)
	defer sub.Shutdown(ctx)
	res := newResults()
	// DrainOnStop: when the 30th row is committed, the last 5 messages may not have been pulled
	// from the subscription yet; a stop without draining would leave them to a redelivery.
	c, err := stream.New(ctx, tbl, sub, &stream.Options{Name: "c1", BatchRows: 10, BatchInterval: time.Hour, OnCommit: res.on, DrainOnStop: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := start(t, c)
	publish(t, topic, 0, 35)
	res.waitRows(t, 30, 10*time.Second)
	if err := stop(); err != nil { // the last 5 are committed on the way out
		t.Fatal(err)
	}
	exactlyOnce(t, tbl, 35)
	for len(res.ch) > 0 {
		<-res.ch
	}
	if len(res.rs) != 4 {
		t.Fatalf("%d batches, want 4 (10, 10, 10 by count, 5 at stop): %+v", len(res.rs), res.rs)
	}
	for i, b := range res.rs {
		want := int64(10)
		if i == 3 {
			want = 5
		}
		if b.Written != want || b.Sequence != int64(i) || b.Committer != "c1" {
			t.Errorf("batch %d: %+v", i, b)
		}
	}
	snap, _ := tbl.Snapshot(ctx)
	if v, ok := snap.AppTransactionVersion("c1"); !ok || v != 3 {
		t.Errorf("txn version of c1: %d %v, want 3", v, ok)
	}
	h, _ := tbl.History(ctx, 1)
	if p := h[0].CommitInfo.OperationParameters; p[stream.CommitterParam] != "c1" {
		t.Errorf("commitInfo.operationParameters %v", p)
	}

	// A new committer with the same name continues the sequence.
	c2, err := stream.New(ctx, tbl, sub, &stream.Options{Name: "c1", BatchRows: 10, BatchInterval: 50 * time.Millisecond, OnCommit: res.on})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	stop = start(t, c2)
	publish(t, topic, 35, 38)
	res.waitRows(t, 3, 10*time.Second)
	stop()
	if last := res.rs[len(res.rs)-1]; last.Sequence != 4 {
		t.Errorf("the sequence continues from the table's txn: %+v", last)
	}
	exactlyOnce(t, tbl, 38)
}

func TestBatchByTime(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	topic := mempubsub.NewTopic()
	sub := mempubsub.NewSubscription(topic, time.Minute)
	defer topic.Shutdown(ctx)
	defer sub.Shutdown(ctx)
	res := newResults()
	c, err := stream.New(ctx, tbl, sub, &stream.Options{Name: "timed", BatchRows: 1000, BatchInterval: 100 * time.Millisecond, OnCommit: res.on})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := start(t, c)
	defer stop()
	t0 := time.Now()
	publish(t, topic, 0, 5)
	res.waitRows(t, 5, 5*time.Second)
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("5 events took %v to commit with a 100 ms interval", d)
	}
	exactlyOnce(t, tbl, 5)
	if b := res.rs[0]; b.Lag <= 0 || b.Lag > 3*time.Second {
		t.Errorf("lag %v", b.Lag)
	}
}

var errCrash = errors.New("simulated crash between commit and ack")

// A committer commits a batch and dies before acking it; the queue redelivers the batch to a new
// committer with the same name (which knows the ids only from the table's log) and to one with
// another name. Nothing is lost and nothing lands twice.
func TestExactlyOnceAcrossCrash(t *testing.T) {
	for _, restartName := range []string{"a", "b"} {
		t.Run("restart as "+restartName, func(t *testing.T) {
			ctx := context.Background()
			tbl := newTable(t)
			topic := mempubsub.NewTopic()
			sub := mempubsub.NewSubscription(topic, 300*time.Millisecond) // redeliver fast
			defer topic.Shutdown(ctx)
			defer sub.Shutdown(ctx)

			publish(t, topic, 0, 50)
			c1, err := stream.New(ctx, tbl, sub, &stream.Options{Name: "a", BatchRows: 20, BatchInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			crashes := 0
			c1.SetAfterCommit(func() error {
				crashes++
				if crashes == 2 { // the second batch is committed, never acked
					return errCrash
				}
				return nil
			})
			if err := c1.Run(ctx); !errors.Is(err, errCrash) {
				t.Fatalf("Run: %v", err)
			}
			c1.Close()
			if n := len(eventIDs(t, tbl)); n != 40 {
				t.Fatalf("after the crash the table has %d rows, want 40", n)
			}

			publish(t, topic, 50, 60)
			res := newResults()
			c2, err := stream.New(ctx, tbl, sub, &stream.Options{Name: restartName, BatchRows: 20, BatchInterval: 50 * time.Millisecond, OnCommit: res.on})
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			stop := start(t, c2)
			// 20 redelivered from the crashed batch (duplicates), 10 more never taken (rows 40..49
			// were in c1's hands unacked too) and 10 new.
			res.waitRows(t, 40, 10*time.Second)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			exactlyOnce(t, tbl, 60)
			var dup int64
			for _, b := range res.rs {
				dup += b.Duplicate
			}
			if dup != 20 {
				t.Errorf("%d duplicates dropped, want 20", dup)
			}
		})
	}
}

func TestQuarantineAndRedelivery(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	topic := mempubsub.NewTopic()
	sub := mempubsub.NewSubscription(topic, 300*time.Millisecond)
	defer topic.Shutdown(ctx)
	defer sub.Shutdown(ctx)
	send := func(body string) {
		if err := topic.Send(ctx, &pubsub.Message{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"event_id":"good-1","user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2024-05-01T10:00:00Z"}`)
	send(`{"event_id":"bad-1","user_id":"u","item_id":"i","interaction_type":"view","timestamp":"2999-01-01T00:00:00Z"}`)
	send(`{"event_id":"bad-2","item_id":"i","interaction_type":"view","timestamp":1714557600000}`)
	send(`not json`)

	c1, err := stream.New(ctx, tbl, sub, &stream.Options{Name: "q", BatchRows: 4, BatchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c1.SetAfterCommit(func() error { return errCrash })
	if err := c1.Run(ctx); !errors.Is(err, errCrash) {
		t.Fatalf("Run: %v", err)
	}
	c1.Close()

	res := newResults()
	c2, err := stream.New(ctx, tbl, sub, &stream.Options{Name: "q", BatchRows: 4, BatchInterval: 50 * time.Millisecond, OnCommit: res.on})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	stop := start(t, c2)
	res.waitRows(t, 4, 10*time.Second)
	stop()
	if ids := eventIDs(t, tbl); len(ids) != 1 || ids[0] != "good-1" {
		t.Fatalf("table ids %v", ids)
	}
	qt, err := table.Open(ctx, strings.TrimSuffix(tbl.URI(), "/")+"_quarantine", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer qt.Close()
	snap, _ := qt.Snapshot(ctx)
	sc, _ := reader.NewScan(ctx, qt, snap, &reader.ScanOptions{Columns: []string{"raw", "reason", "source"}})
	recs, err := sc.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, r := range recs {
		for i := range int(r.NumRows()) {
			reasons = append(reasons, r.Column(0).(*array.String).Value(i)+" => "+r.Column(1).(*array.String).Value(i))
		}
		r.Release()
	}
	// bad-1 and bad-2 are recognised when redelivered; "not json" has no id and is quarantined
	// again (a record without an event_id cannot be told from a new one).
	if len(reasons) != 4 {
		t.Fatalf("quarantine rows:\n%s", strings.Join(reasons, "\n"))
	}
}

func TestNameInUse(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	topic := mempubsub.NewTopic()
	sub1 := mempubsub.NewSubscription(topic, time.Minute)
	sub2 := mempubsub.NewSubscription(topic, time.Minute)
	defer topic.Shutdown(ctx)
	defer sub1.Shutdown(ctx)
	defer sub2.Shutdown(ctx)
	c1, err := stream.New(ctx, tbl, sub1, &stream.Options{Name: "same", BatchRows: 5, BatchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	c2, err := stream.New(ctx, tbl, sub2, &stream.Options{Name: "same", BatchRows: 5, BatchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	publish(t, topic, 0, 5) // both subscriptions get all 5
	res := newResults()
	c1.SetAfterCommit(func() error { res.on(stream.BatchResult{Written: 5}); return nil })
	stop := start(t, c1)
	res.waitRows(t, 5, 10*time.Second)
	stop()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c2.Run(cctx); !errors.Is(err, stream.ErrNameInUse) {
		t.Fatalf("second committer with the same name: %v", err)
	}
	exactlyOnce(t, tbl, 5)
}

func TestOptionsValidated(t *testing.T) {
	ctx := context.Background()
	tbl := newTable(t)
	sub := mempubsub.NewSubscription(mempubsub.NewTopic(), time.Minute)
	defer sub.Shutdown(ctx)
	for _, o := range []stream.Options{{BatchRows: -1}, {BatchInterval: -time.Second}, {RecentIDs: 10, BatchRows: 100}} {
		if _, err := stream.New(ctx, tbl, sub, &o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestOpenQueueURLs(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"kafka://x", "mem://", "rabbit://"} {
		if _, err := stream.OpenQueue(ctx, u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	q, err := stream.OpenQueue(ctx, "mem://open-queue-test")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close(ctx)
	if q.Durable() {
		t.Error("mem:// is not durable")
	}
	sub, err := q.Subscribe(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Subscribe(ctx, 0); err == nil {
		t.Error("a second mem:// subscription in one process would get every message twice")
	}
	if err := q.Topic().Send(ctx, &pubsub.Message{Body: []byte("x"), BeforeSend: stream.BeforeSend}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := sub.Receive(rctx)
	if err != nil || string(m.Body) != "x" {
		t.Fatalf("receive: %v", err)
	}
	m.Ack()
}
