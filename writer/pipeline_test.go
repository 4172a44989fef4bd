package writer_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lakehouse/lake/writer"
)

var errBoom = errors.New("boom")

// failingHook fails the encoding of the n-th record (1-based) the encoder takes.
func failingHook(n int64) func(context.Context) error {
	var seen atomic.Int64
	return func(context.Context) error {
		if seen.Add(1) == n {
			return errBoom
		}
		return nil
	}
}

// An error of the background encoding is returned by Close when no Write saw it; nothing is
// committed and no file is left.
func TestBackgroundErrorFromClose(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := interactionsTable(t)
	r := rand.New(rand.NewPCG(41, 42))
	w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem, TargetFileSize: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	writer.SetEncodeHook(w, failingHook(2))
	for range 2 {
		rec := interactionRecord(mem, genInteractions(r, 2000, 3))
		err := w.Write(ctx, rec)
		rec.Release()
		if err != nil && !errors.Is(err, errBoom) {
			t.Fatalf("Write: %v", err)
		}
	}
	if _, err := w.Close(ctx); !errors.Is(err, errBoom) {
		t.Fatalf("Close: %v, want the encoder's error", err)
	}
	if files := listData(t, tb.Bucket()); len(files) != 0 {
		t.Errorf("files left: %v", files)
	}
	if v := snapshot(t, tb).Version(); v != 0 {
		t.Errorf("version %d", v)
	}
}

// An error of the background encoding is returned by a later Write, fails the Writer (Close
// returns it), and Abort then removes every file.
func TestBackgroundErrorFromWriteThenAbort(t *testing.T) {
	for _, end := range []string{"close", "abort"} {
		t.Run(end, func(t *testing.T) {
			ctx := context.Background()
			mem := checked(t)
			tb := interactionsTable(t)
			r := rand.New(rand.NewPCG(43, 44))
			// Small files: the first record finishes some files before the second fails.
			w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem, TargetFileSize: 16 << 10})
			if err != nil {
				t.Fatal(err)
			}
			writer.SetEncodeHook(w, failingHook(2))
			rec := interactionRecord(mem, genInteractions(r, 3000, 2))
			defer rec.Release()
			var werr error
			// The encoder drops the records queued after its failure, so some Write soon reports it.
			for i := 0; i < 1_000_000 && werr == nil; i++ {
				werr = w.Write(ctx, rec)
				runtime.Gosched()
			}
			if !errors.Is(werr, errBoom) {
				t.Fatalf("Write: %v, want the encoder's error", werr)
			}
			if err := w.Write(ctx, rec); !errors.Is(err, errBoom) {
				t.Errorf("Write after the failure: %v", err)
			}
			switch end {
			case "close":
				if _, err := w.Close(ctx); !errors.Is(err, errBoom) {
					t.Errorf("Close: %v", err)
				}
			case "abort":
				if err := w.Abort(ctx); err != nil {
					t.Errorf("Abort: %v", err)
				}
			}
			if files := listData(t, tb.Bucket()); len(files) != 0 {
				t.Errorf("files left: %v", files)
			}
			if v := snapshot(t, tb).Version(); v != 0 {
				t.Errorf("version %d", v)
			}
		})
	}
}

// Cancelling the context of a Write that waits for the queue stops the encoding in progress
// (of an earlier record) and fails the Writer.
func TestCancelWhileEncoding(t *testing.T) {
	mem := checked(t)
	tb := interactionsTable(t)
	r := rand.New(rand.NewPCG(45, 46))
	w, err := writer.New(context.Background(), tb, &writer.Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	var once sync.Once
	stopped := make(chan error, 1)
	// The encoder blocks on its first record until its context ends.
	writer.SetEncodeHook(w, func(ctx context.Context) error {
		once.Do(func() {
			close(entered)
			<-ctx.Done()
			stopped <- ctx.Err()
		})
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	rec := interactionRecord(mem, genInteractions(r, 1000, 3))
	defer rec.Release()
	werr := make(chan error, 1)
	go func() {
		for {
			if err := w.Write(ctx, rec); err != nil {
				werr <- err
				return
			}
		}
	}()
	<-entered
	cancel()
	if err := <-werr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Write: %v", err)
	}
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Errorf("encoder context: %v", err)
	}
	if _, err := w.Close(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close: %v", err)
	}
	if files := listData(t, tb.Bucket()); len(files) != 0 {
		t.Errorf("files left: %v", files)
	}
}

// Cancelling the context of Close while it waits for the queued records fails it and leaves
// nothing behind.
func TestCancelCloseWhileEncoding(t *testing.T) {
	mem := checked(t)
	tb := interactionsTable(t)
	r := rand.New(rand.NewPCG(47, 48))
	w, err := writer.New(context.Background(), tb, &writer.Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	var once sync.Once
	writer.SetEncodeHook(w, func(ctx context.Context) error {
		once.Do(func() {
			close(entered)
			<-ctx.Done()
		})
		return ctx.Err()
	})
	rec := interactionRecord(mem, genInteractions(r, 1000, 3))
	defer rec.Release()
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-entered
		cancel()
	}()
	if _, err := w.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close: %v", err)
	}
	if files := listData(t, tb.Bucket()); len(files) != 0 {
		t.Errorf("files left: %v", files)
	}
	if v := snapshot(t, tb).Version(); v != 0 {
		t.Errorf("version %d", v)
	}
}

// While the encoder is stuck, Write queues at most QueueDepth records and then waits: the
// memory held stays bounded by a few records, however many the caller has. Once the encoder
// resumes, every row is written.
func TestQueueBoundsMemory(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	tb := interactionsTable(t)
	r := rand.New(rand.NewPCG(49, 50))
	w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{})
	var once sync.Once
	writer.SetEncodeHook(w, func(ctx context.Context) error {
		once.Do(func() {
			close(entered)
			<-release
		})
		return nil
	})
	const batches, n = 24, 2000
	recs := make([][]interaction, batches)
	for i := range recs {
		recs[i] = genInteractions(r, n, 5)
	}
	// The size of one record, as the writer's copy of it (reordered by partition) costs.
	before := mem.CurrentAlloc()
	probe := interactionRecord(mem, recs[0])
	recBytes := mem.CurrentAlloc() - before
	probe.Release()

	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		for _, rows := range recs {
			rec := interactionRecord(mem, rows)
			err := w.Write(ctx, rec)
			rec.Release()
			if err != nil {
				done <- err
				return
			}
			written.Add(1)
		}
		done <- nil
	}()
	<-entered
	// One record in the encoder, QueueDepth queued: the next Write waits.
	for written.Load() < 1+writer.QueueDepth {
		runtime.Gosched()
	}
	for range 100 {
		runtime.Gosched()
		if got := written.Load(); got > 1+writer.QueueDepth {
			t.Fatalf("%d Writes returned while the encoder was stuck; want at most %d", got, 1+writer.QueueDepth)
		}
	}
	// Held: the records queued and in the encoder, the one the caller is writing (and its copy).
	t.Logf("%d bytes allocated with the encoder stuck; records of %d bytes", mem.CurrentAlloc(), recBytes)
	if got, limit := mem.CurrentAlloc(), (1+writer.QueueDepth+2)*recBytes*3/2; got > limit {
		t.Errorf("%d bytes allocated with the encoder stuck; want at most %d (records of %d bytes)", got, limit, recBytes)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != batches*n {
		t.Errorf("rows %d, want %d", res.Rows, batches*n)
	}
	var rows int64
	for _, a := range res.Added {
		rows += parseStatsRows(t, a.Stats)
	}
	if rows != batches*n {
		t.Errorf("files hold %d rows, want %d", rows, batches*n)
	}
}

func parseStatsRows(t *testing.T, stats string) int64 {
	t.Helper()
	n, err := parseStats(t, stats)["numRecords"].(interface{ Int64() (int64, error) }).Int64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
