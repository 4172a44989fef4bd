// Package storagetest runs tests on every kind of store a table can live on: the conformance
// suite of package storage (RunConformance), and the suites of other packages through Backends.
//
// Typical use in another package's test:
//
//	func TestCommitRace(t *testing.T) {
//		for _, b := range storagetest.Backends(t) {
//			t.Run(b.Name, func(t *testing.T) {
//				loc := b.Open(t) // a fresh, empty table root; skipped if the emulator is not configured
//				...
//			})
//		}
//	}
//
// # Emulators
//
// The object-store backends need the emulators that scripts/services.sh starts and the
// environment that `eval "$(scripts/services.sh env)"` exports: LAKE_TEST_S3_URL,
// LAKE_TEST_GCS_URL, LAKE_TEST_AZURE_URL and the credentials the gocloud drivers read. A backend
// whose variable is unset skips its test, or fails it when the variable CI is set. Each test gets
// a fresh random prefix inside the bucket or container the variable names (created on first use),
// and everything under that prefix is deleted when the test ends.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	gcs "cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/lakehouse/lake/internal/storage"
)

// Backend is one kind of store.
type Backend struct {
	// Name is "mem", "local", "s3", "gcs" or "azure": a good subtest name.
	Name string
	// URI returns the URI of a fresh, empty table root for t, cleaned up when t ends. For an
	// emulator that is not configured it skips t (fails it when CI is set).
	URI func(t testing.TB) string
}

// Open opens a fresh, empty table root on b (see URI) and closes it when t ends.
func (b Backend) Open(t testing.TB) *storage.Location {
	t.Helper()
	uri := b.URI(t)
	loc, err := storage.Open(context.Background(), uri)
	if err != nil {
		t.Fatalf("storagetest: opening %s: %v", uri, err)
	}
	t.Cleanup(func() {
		if err := loc.Close(); err != nil {
			t.Errorf("storagetest: closing %s: %v", uri, err)
		}
	})
	return loc
}

// Backends returns every backend: mem and local always, and S3, GCS and Azure, whose URI skips
// (or, under CI, fails) the test when their environment variable is unset.
func Backends(t testing.TB) []Backend {
	t.Helper()
	bs := []Backend{
		{Name: "mem", URI: func(t testing.TB) string {
			uri := "mem://storagetest/" + testPrefix(t)
			t.Cleanup(func() { deleteAll(t, uri) })
			return uri
		}},
		{Name: "local", URI: func(t testing.TB) string { return t.TempDir() }},
	}
	for _, e := range emulators {
		bs = append(bs, Backend{Name: e.name, URI: e.uri})
	}
	return bs
}

type emulator struct {
	name, env string
}

var emulators = []emulator{
	{name: "s3", env: "LAKE_TEST_S3_URL"},
	{name: "gcs", env: "LAKE_TEST_GCS_URL"},
	{name: "azure", env: "LAKE_TEST_AZURE_URL"},
}

func (e emulator) uri(t testing.TB) string {
	t.Helper()
	base := os.Getenv(e.env)
	if base == "" {
		msg := fmt.Sprintf("storagetest: %s is not set: run scripts/services.sh start, then eval \"$(scripts/services.sh env)\"", e.env)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if err := ensureBucket(base); err != nil {
		t.Fatalf("storagetest: %s backend (%s=%s): %v; are the emulators running? (scripts/services.sh start)", e.name, e.env, base, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("storagetest: %s: %v", e.env, err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + testPrefix(t)
	uri := u.String()
	t.Cleanup(func() { deleteAll(t, uri) })
	return uri
}

// testPrefix is a fresh key prefix that names the test, for whoever looks into the emulator.
func testPrefix(t testing.TB) string {
	name := []byte(t.Name())
	for i, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			name[i] = '-'
		}
	}
	if len(name) > 48 {
		name = name[:48]
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	return string(name) + "-" + hex.EncodeToString(r[:])
}

// deleteAll deletes every object under uri, so the emulators do not fill up across runs.
func deleteAll(t testing.TB, uri string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	loc, err := storage.Open(ctx, uri)
	if err != nil {
		t.Errorf("storagetest: cleaning up %s: %v", uri, err)
		return
	}
	defer loc.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	it := loc.Bucket.List(nil)
	for {
		obj, err := it.Next(gctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			g.Go(func() error { return err })
			break
		}
		g.Go(func() error { return loc.Bucket.Delete(gctx, obj.Key) })
	}
	if err := g.Wait(); err != nil {
		t.Errorf("storagetest: cleaning up %s: %v", uri, err)
	}
}

// buckets remembers, per bucket URL, the outcome of making sure the bucket exists.
var buckets sync.Map // string -> func() error

func ensureBucket(base string) error {
	f, _ := buckets.LoadOrStore(base, sync.OnceValue(func() error { return createBucket(base) }))
	return f.(func() error)()
}

// createBucket creates the bucket or container that base names, if it does not exist, through
// the driver's native client: gocloud has no portable way to create one.
func createBucket(base string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	b, err := blob.OpenBucket(ctx, base)
	if err != nil {
		return err
	}
	defer b.Close()
	if ok, err := b.IsAccessible(ctx); ok {
		return nil
	} else if err != nil {
		return err
	}
	var (
		s3c *s3.Client
		gc  *gcs.Client
		az  *container.Client
	)
	switch {
	case b.As(&s3c):
		_, err = s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &u.Host})
	case b.As(&gc):
		err = gc.Bucket(u.Host).Create(ctx, "lake-test", nil)
	case b.As(&az):
		_, err = az.Create(ctx, nil)
	default:
		return fmt.Errorf("no native client to create bucket %q with", u.Host)
	}
	// Another test process may have created it first: what counts is that it exists now.
	if ok, aerr := b.IsAccessible(ctx); ok {
		return nil
	} else if err == nil {
		err = aerr
	}
	return fmt.Errorf("creating bucket %q: %w", u.Host, err)
}
