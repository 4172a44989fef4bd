package storage_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/lakehouse/lake/internal/storage"
	"github.com/lakehouse/lake/internal/storage/storagetest"
	"github.com/lakehouse/lake/txlog"
)

func TestConformance(t *testing.T) {
	for _, b := range storagetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			storagetest.RunConformance(t, func(t *testing.T) *storage.Location { return b.Open(t) })
		})
	}
}

func backend(t *testing.T, name string) storagetest.Backend {
	for _, b := range storagetest.Backends(t) {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("no backend %q", name)
	return storagetest.Backend{}
}

// TestAzureConditionalWriters is a regression test for gocloud v0.47.0's azureblob, whose Writer
// panics in Close whenever its upload fails, as it does for every loser of a conditional write.
func TestAzureConditionalWriters(t *testing.T) {
	loc := backend(t, "azure").Open(t)
	ctx := context.Background()
	const writers = 8
	paths := map[string]func(i int, key string) error{
		"Commits": func(i int, key string) error {
			return loc.Commits.PutIfAbsent(ctx, key, fmt.Appendf(nil, "writer %d", i))
		},
		"NewWriter": func(i int, key string) error {
			w, err := loc.Bucket.NewWriter(ctx, key, &blob.WriterOptions{IfNotExist: true, ContentType: "application/json"})
			if err != nil {
				return err
			}
			_, werr := fmt.Fprintf(w, "writer %d", i)
			return errors.Join(werr, w.Close())
		},
		"WriteAll": func(i int, key string) error {
			return loc.Bucket.WriteAll(ctx, key, fmt.Appendf(nil, "writer %d", i), &blob.WriterOptions{IfNotExist: true})
		},
	}
	for name, write := range paths {
		t.Run(name, func(t *testing.T) {
			key := "_delta_log/" + name + ".json"
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() { errs[i] = write(i, key) })
			}
			wg.Wait()
			won := -1
			for i, err := range errs {
				switch {
				case err == nil:
					if won >= 0 {
						t.Fatalf("writers %d and %d both won", won, i)
					}
					won = i
				case errors.Is(err, txlog.ErrVersionExists), gcerrors.Code(err) == gcerrors.FailedPrecondition:
				default:
					t.Errorf("writer %d: %v", i, err)
				}
			}
			if won < 0 {
				t.Fatalf("no writer won: %v", errs)
			}
			got, err := loc.Bucket.ReadAll(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("writer %d", won); string(got) != want {
				t.Fatalf("%s holds %q, want %q", key, got, want)
			}
		})
	}
}

// TestAzureMissingContainer: a write that fails for any reason (here a missing container) returns
// an error instead of panicking.
func TestAzureMissingContainer(t *testing.T) {
	backend(t, "azure").URI(t) // skips without the emulator
	u, err := url.Parse(os.Getenv("LAKE_TEST_AZURE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = "lake-missing-container"
	loc, err := storage.Open(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	w, err := loc.Bucket.NewWriter(context.Background(), "x.json", &blob.WriterOptions{ContentType: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	_, werr := w.Write([]byte("{}"))
	err = errors.Join(werr, w.Close())
	if gcerrors.Code(err) != gcerrors.NotFound {
		t.Fatalf("writing into a missing container returned %v, want NotFound", err)
	}
	// The wrapping Bucket still exposes the driver's types.
	var re *azcore.ResponseError
	if !loc.Bucket.ErrorAs(err, &re) || re.ErrorCode != "ContainerNotFound" {
		t.Errorf("ErrorAs(%v) did not give an *azcore.ResponseError with ContainerNotFound (got %v)", err, re)
	}
	var c *container.Client
	if !loc.Bucket.As(&c) {
		t.Error("Bucket.As did not give the *container.Client")
	}
	err = loc.Commits.PutIfAbsent(context.Background(), "_delta_log/00000000000000000000.json", []byte("{}"))
	if err == nil || errors.Is(err, txlog.ErrVersionExists) {
		t.Fatalf("PutIfAbsent into a missing container returned %v, want an unknown-outcome error", err)
	}
}
