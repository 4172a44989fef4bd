package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/lakehouse/lake/internal/storage"
	"github.com/lakehouse/lake/txlog"
)

// RunConformance runs the storage conformance suite: the behaviour every Location must have,
// whatever the store. open must return a fresh, empty Location for t and close it when t ends
// (Backend.Open does).
func RunConformance(t *testing.T, open func(t *testing.T) *storage.Location) {
	tests := []struct {
		name string
		fn   func(t *testing.T, loc *storage.Location)
	}{
		{"PutGetList", testPutGetList},
		{"Overwrite", testOverwrite},
		{"PutIfAbsentCreates", testPutIfAbsentCreates},
		{"PutIfAbsentExisting", testPutIfAbsentExisting},
		{"PutIfAbsentRace", testPutIfAbsentRace},
		{"PutIfAbsentCancelled", testPutIfAbsentCancelled},
		{"WriterIfNotExist", testWriterIfNotExist},
		{"AbortedWriterInvisible", testAbortedWriterInvisible},
		{"FailedUploadInvisible", testFailedUploadInvisible},
		{"ReadersSeeWholeObjects", testReadersSeeWholeObjects},
		{"ListingHidesTempFiles", testListingHidesTempFiles},
		{"Sub", testSub},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

const commitKey = "_delta_log/00000000000000000000.json"

func put(t *testing.T, b *blob.Bucket, key string, data []byte) {
	t.Helper()
	if err := b.Upload(context.Background(), key, bytes.NewReader(data), &blob.WriterOptions{ContentType: "application/octet-stream"}); err != nil {
		t.Fatalf("writing %s: %v", key, err)
	}
}

func get(t *testing.T, b *blob.Bucket, key string) []byte {
	t.Helper()
	data, err := b.ReadAll(context.Background(), key)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	return data
}

func wantContent(t *testing.T, b *blob.Bucket, key string, want []byte) {
	t.Helper()
	if got := get(t, b, key); !bytes.Equal(got, want) {
		t.Fatalf("%s holds %q, want %q", key, short(got), short(want))
	}
}

func wantAbsent(t *testing.T, b *blob.Bucket, key string) {
	t.Helper()
	_, err := b.Attributes(context.Background(), key)
	if gcerrors.Code(err) != gcerrors.NotFound {
		t.Fatalf("%s: Attributes returned %v, want NotFound", key, err)
	}
}

func short(b []byte) []byte {
	if len(b) > 40 {
		return append(b[:40:40], "..."...)
	}
	return b
}

// list returns every key under prefix, with "/" as delimiter if delim.
func list(t *testing.T, b *blob.Bucket, prefix string, delim bool) []string {
	t.Helper()
	keys, err := listKeys(b, prefix, delim)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func listKeys(b *blob.Bucket, prefix string, delim bool) ([]string, error) {
	opts := &blob.ListOptions{Prefix: prefix}
	if delim {
		opts.Delimiter = "/"
	}
	var keys []string
	it := b.List(opts)
	for {
		obj, err := it.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return keys, nil
		}
		if err != nil {
			return nil, fmt.Errorf("listing %q: %w", prefix, err)
		}
		keys = append(keys, obj.Key)
	}
}

func wantKeys(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("listed %q, want %q", got, want)
	}
}

func testPutGetList(t *testing.T, loc *storage.Location) {
	b := loc.Bucket
	keys := []string{"_delta_log/00000000000000000000.json", "_delta_log/00000000000000000001.json", "a=1/part-0.parquet", "a=2/part-1.parquet", "part-2.parquet"}
	for _, k := range keys {
		put(t, b, k, []byte("data of "+k))
	}
	for _, k := range keys {
		wantContent(t, b, k, []byte("data of "+k))
	}
	wantKeys(t, list(t, b, "", false), keys...)
	wantKeys(t, list(t, b, "_delta_log/", false), keys[:2]...)
	wantKeys(t, list(t, b, "_delta_log/00000000000000000001", false), keys[1])
	wantKeys(t, list(t, b, "", true), "_delta_log/", "a=1/", "a=2/", "part-2.parquet")
	wantKeys(t, list(t, b, "nothing/", false))

	a, err := b.Attributes(context.Background(), keys[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len("data of " + keys[0])); a.Size != want {
		t.Errorf("size of %s is %d, want %d", keys[0], a.Size, want)
	}
	wantAbsent(t, b, "_delta_log/00000000000000000002.json")
	if err := b.Delete(context.Background(), keys[4]); err != nil {
		t.Fatal(err)
	}
	wantAbsent(t, b, keys[4])
}

func testOverwrite(t *testing.T, loc *storage.Location) {
	put(t, loc.Bucket, "_delta_log/_last_checkpoint", []byte("first"))
	put(t, loc.Bucket, "_delta_log/_last_checkpoint", []byte("second, longer"))
	wantContent(t, loc.Bucket, "_delta_log/_last_checkpoint", []byte("second, longer"))
	wantKeys(t, list(t, loc.Bucket, "", false), "_delta_log/_last_checkpoint")
}

func testPutIfAbsentCreates(t *testing.T, loc *storage.Location) {
	data := []byte(`{"commitInfo":{}}` + "\n")
	if err := loc.Commits.PutIfAbsent(context.Background(), commitKey, data); err != nil {
		t.Fatalf("PutIfAbsent on an empty location: %v", err)
	}
	wantContent(t, loc.Bucket, commitKey, data)
	wantKeys(t, list(t, loc.Bucket, "", false), commitKey)
}

func testPutIfAbsentExisting(t *testing.T, loc *storage.Location) {
	ctx := context.Background()
	if err := loc.Commits.PutIfAbsent(ctx, commitKey, []byte("first")); err != nil {
		t.Fatal(err)
	}
	err := loc.Commits.PutIfAbsent(ctx, commitKey, []byte("second"))
	if !errors.Is(err, txlog.ErrVersionExists) {
		t.Fatalf("PutIfAbsent on an existing key returned %v, want an error wrapping txlog.ErrVersionExists", err)
	}
	wantContent(t, loc.Bucket, commitKey, []byte("first"))
	// Also through a separately opened Location on the same root (another process's view).
	other, err := storage.Open(ctx, loc.URI)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Commits.PutIfAbsent(ctx, commitKey, []byte("third")); !errors.Is(err, txlog.ErrVersionExists) {
		t.Fatalf("PutIfAbsent through a second Location returned %v, want txlog.ErrVersionExists", err)
	}
	wantContent(t, other.Bucket, commitKey, []byte("first"))
}

// raceWriters is the number of concurrent writers in the races.
const raceWriters = 16

// raceRounds is the number of races run, each for its own key: one round can be won cleanly by
// luck even on a store whose create-if-absent is not atomic.
const raceRounds = 10

func testPutIfAbsentRace(t *testing.T, loc *storage.Location) {
	var keys []string
	for round := range raceRounds {
		keys = append(keys, fmt.Sprintf("_delta_log/%020d.json", round))
		raceOnce(t, loc, keys[round])
	}
	wantKeys(t, list(t, loc.Bucket, "", false), keys...)
}

func raceOnce(t *testing.T, loc *storage.Location, key string) {
	t.Helper()
	ctx := context.Background()
	contents := make([][]byte, raceWriters)
	errs := make([]error, raceWriters)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range raceWriters {
		// Distinct contents of distinct lengths: a mix-up cannot go unnoticed.
		contents[i] = fmt.Appendf(nil, `{"commitInfo":{"txnId":"writer-%02d"}}%s`, i, strings.Repeat(" ", i))
		wg.Go(func() {
			<-start
			errs[i] = loc.Commits.PutIfAbsent(ctx, key, contents[i])
		})
	}
	close(start)
	wg.Wait()

	stored := get(t, loc.Bucket, key)
	var winners []int
	for i, err := range errs {
		switch {
		case err == nil:
			winners = append(winners, i)
		case errors.Is(err, txlog.ErrVersionExists):
		default:
			// Unknown outcome (S3 may answer a racing conditional put with 409): settle it by
			// reading back, as the log does.
			t.Logf("%s: writer %d: unknown outcome, settled by reading back: %v", key, i, err)
			if bytes.Equal(stored, contents[i]) {
				winners = append(winners, i)
			}
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%s: %d writers won the race (%v), want exactly 1; errors: %v", key, len(winners), winners, errs)
	}
	if w := winners[0]; !bytes.Equal(stored, contents[w]) {
		t.Fatalf("%s holds %q, but writer %d won with %q", key, stored, w, contents[w])
	}
}

func testPutIfAbsentCancelled(t *testing.T, loc *storage.Location) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := loc.Commits.PutIfAbsent(ctx, commitKey, []byte("cancelled"))
	if err == nil || errors.Is(err, txlog.ErrVersionExists) {
		t.Fatalf("PutIfAbsent with a cancelled context returned %v, want an unknown-outcome error", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("PutIfAbsent with a cancelled context returned %v, want it to wrap context.Canceled", err)
	}
	wantAbsent(t, loc.Bucket, commitKey)
	wantKeys(t, list(t, loc.Bucket, "", false))
	if err := loc.Commits.PutIfAbsent(context.Background(), commitKey, []byte("next")); err != nil {
		t.Fatalf("PutIfAbsent after a cancelled one: %v", err)
	}
}

// testWriterIfNotExist races conditional writers through Bucket.NewWriter, the path on which
// gocloud v0.47.0's azureblob panics for every loser.
func testWriterIfNotExist(t *testing.T, loc *storage.Location) {
	ctx := context.Background()
	const key = "_delta_log/_marker"
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			w, err := loc.Bucket.NewWriter(ctx, key, &blob.WriterOptions{IfNotExist: true, ContentType: "text/plain"})
			if err != nil {
				errs[i] = err
				return
			}
			_, werr := fmt.Fprintf(w, "writer %d", i)
			errs[i] = errors.Join(werr, w.Close())
		})
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if won >= 0 {
				t.Fatalf("writers %d and %d both created %s", won, i, key)
			}
			won = i
		case gcerrors.Code(err) == gcerrors.FailedPrecondition:
		default:
			t.Logf("writer %d: %v", i, err)
		}
	}
	if won < 0 {
		t.Fatalf("no writer created %s: %v", key, errs)
	}
	wantContent(t, loc.Bucket, key, fmt.Appendf(nil, "writer %d", won))
}

// payload is large enough that a store could have sent part of it before the failure.
var payload = bytes.Repeat([]byte("0123456789abcdef"), 16<<10) // 256 KiB

func testAbortedWriterInvisible(t *testing.T, loc *storage.Location) {
	const key = "part-aborted.parquet"
	for _, ifNotExist := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		w, err := loc.Bucket.NewWriter(ctx, key, &blob.WriterOptions{ContentType: "application/octet-stream", IfNotExist: ifNotExist})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(payload[:len(payload)/2]); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := w.Close(); err == nil {
			t.Fatalf("IfNotExist=%v: Close after cancelling the context returned nil, want an error", ifNotExist)
		}
		wantAbsent(t, loc.Bucket, key)
	}
	// An aborted overwrite leaves the old content.
	put(t, loc.Bucket, key, []byte("old"))
	ctx, cancel := context.WithCancel(context.Background())
	w, err := loc.Bucket.NewWriter(ctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(payload); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Close(); err == nil {
		t.Fatal("Close of an aborted overwrite returned nil, want an error")
	}
	wantContent(t, loc.Bucket, key, []byte("old"))
	wantKeys(t, list(t, loc.Bucket, "", false), key)
}

// failingReader yields n bytes of payload, then fails.
type failingReader struct{ n int }

var errSource = errors.New("storagetest: source failed")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errSource
	}
	k := copy(p[:min(len(p), r.n)], payload)
	r.n -= k
	return k, nil
}

func testFailedUploadInvisible(t *testing.T, loc *storage.Location) {
	ctx := context.Background()
	const key = "part-failed.parquet"
	for _, ifNotExist := range []bool{false, true} {
		err := loc.Bucket.Upload(ctx, key, &failingReader{n: len(payload) / 2}, &blob.WriterOptions{ContentType: "application/octet-stream", IfNotExist: ifNotExist})
		if err == nil {
			t.Fatalf("IfNotExist=%v: Upload from a failing reader returned nil", ifNotExist)
		}
		wantAbsent(t, loc.Bucket, key)
	}
	put(t, loc.Bucket, key, []byte("old"))
	if err := loc.Bucket.Upload(ctx, key, &failingReader{n: len(payload) / 2}, &blob.WriterOptions{ContentType: "application/octet-stream"}); err == nil {
		t.Fatal("overwriting Upload from a failing reader returned nil")
	}
	wantContent(t, loc.Bucket, key, []byte("old"))
	wantKeys(t, list(t, loc.Bucket, "", false), key)
}

// testReadersSeeWholeObjects overwrites a key while reading it: every read sees one whole version.
func testReadersSeeWholeObjects(t *testing.T, loc *storage.Location) {
	ctx := context.Background()
	const key = "_delta_log/_last_checkpoint"
	versions := make([][]byte, 10)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 4096*(i+1))
	}
	put(t, loc.Bucket, key, versions[0])
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for _, v := range versions[1:] {
			err := loc.Bucket.Upload(ctx, key, bytes.NewReader(v), &blob.WriterOptions{ContentType: "application/octet-stream"})
			if err != nil {
				t.Errorf("overwriting %s: %v", key, err)
				return
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := loc.Bucket.ReadAll(ctx, key)
				if err != nil {
					t.Errorf("reading %s during overwrites: %v", key, err)
					return
				}
				if !slices.ContainsFunc(versions, func(v []byte) bool { return bytes.Equal(v, got) }) {
					t.Errorf("read %d bytes starting %q: not one whole version", len(got), short(got))
					return
				}
			}
		})
	}
	wg.Wait()
	wantContent(t, loc.Bucket, key, versions[len(versions)-1])
}

// testListingHidesTempFiles lists while writers race for commit files, and after: listings show
// only the keys written, never a write's temporary file, and never fail.
func testListingHidesTempFiles(t *testing.T, loc *storage.Location) {
	ctx := context.Background()
	keys := make([]string, 4)
	for i := range keys {
		keys[i] = fmt.Sprintf("_delta_log/%020d.json", i)
	}
	stop := make(chan struct{})
	var listers sync.WaitGroup
	for _, prefix := range []string{"", "_delta_log/"} {
		listers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := listKeys(loc.Bucket, prefix, false)
				if err != nil {
					t.Errorf("during commits: %v", err)
					return
				}
				for _, k := range got {
					if !slices.Contains(keys, k) {
						t.Errorf("listing %q during commits showed %q", prefix, k)
						return
					}
				}
			}
		})
	}
	var writers sync.WaitGroup
	for _, k := range keys {
		for w := range 4 {
			writers.Go(func() {
				err := loc.Commits.PutIfAbsent(ctx, k, fmt.Appendf(nil, "writer %d", w))
				if err != nil && !errors.Is(err, txlog.ErrVersionExists) {
					t.Logf("PutIfAbsent(%s): %v", k, err)
				}
			})
		}
	}
	writers.Wait()
	close(stop)
	listers.Wait()
	wantKeys(t, list(t, loc.Bucket, "", false), keys...)
	wantKeys(t, list(t, loc.Bucket, "", true), "_delta_log/")
}

func testSub(t *testing.T, loc *storage.Location) {
	ctx := context.Background()
	sub, err := loc.Sub(ctx, "jobs/42/events")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sub.URI, "jobs/42/events") {
		t.Errorf("Sub URI %q does not name jobs/42/events", sub.URI)
	}
	if err := sub.Commits.PutIfAbsent(ctx, commitKey, []byte("sub")); err != nil {
		t.Fatal(err)
	}
	wantContent(t, loc.Bucket, "jobs/42/events/"+commitKey, []byte("sub"))
	wantKeys(t, list(t, sub.Bucket, "", false), commitKey)
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing the sub-location leaves the parent usable.
	wantContent(t, loc.Bucket, "jobs/42/events/"+commitKey, []byte("sub"))
	if _, err := loc.Sub(ctx, "../escape"); err == nil {
		t.Error(`Sub("../escape") returned no error`)
	}
}

func testClosed(t *testing.T, loc *storage.Location) {
	ctx := context.Background()
	other, err := storage.Open(ctx, loc.URI)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	err = other.Commits.PutIfAbsent(ctx, commitKey, []byte("late"))
	if err == nil || errors.Is(err, txlog.ErrVersionExists) {
		t.Fatalf("PutIfAbsent on a closed Location returned %v, want an error that is not ErrVersionExists", err)
	}
	// The location's data is untouched, and other Locations on it still work.
	wantAbsent(t, loc.Bucket, commitKey)
	if err := loc.Commits.PutIfAbsent(ctx, commitKey, []byte("ok")); err != nil {
		t.Fatal(err)
	}
}
