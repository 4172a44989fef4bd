package replica

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"

	"github.com/lakehouse/lake/internal/storage/storagetest"
)

// faultyDriver is a blob driver over another bucket that damages what passes through it: the
// first byte of every read (corruptRead) or of every write (corruptWrite) is flipped, and
// hideMD5 makes Attributes report no MD5, as for GCS's composed objects or S3's multipart
// uploads, which have only a CRC. Everything else, Attributes.As included, is the inner
// bucket's.
type faultyDriver struct {
	inner                              *blob.Bucket
	corruptRead, corruptWrite, hideMD5 bool
}

func faulty(inner *blob.Bucket, d faultyDriver) *blob.Bucket {
	d.inner = inner
	return blob.NewBucket(&d)
}

func (d *faultyDriver) ErrorCode(err error) gcerrors.ErrorCode { return gcerrors.Code(err) }
func (d *faultyDriver) As(i any) bool                          { return d.inner.As(i) }
func (d *faultyDriver) ErrorAs(err error, i any) bool          { return d.inner.ErrorAs(err, i) }
func (d *faultyDriver) Close() error                           { return nil }

func (d *faultyDriver) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	a, err := d.inner.Attributes(ctx, key)
	if err != nil {
		return nil, err
	}
	md5 := a.MD5
	if d.hideMD5 {
		md5 = nil
	}
	return &driver.Attributes{ContentType: a.ContentType, ModTime: a.ModTime, Size: a.Size, MD5: md5, ETag: a.ETag, AsFunc: a.As}, nil
}

func (d *faultyDriver) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	return nil, errors.New("faultyDriver: no listing")
}

type flipReader struct {
	r       *blob.Reader
	flipped bool
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && !f.flipped {
		p[0] ^= 0xff
		f.flipped = true
	}
	return n, err
}
func (f *flipReader) Close() error { return f.r.Close() }
func (f *flipReader) Attributes() *driver.ReaderAttributes {
	return &driver.ReaderAttributes{ContentType: f.r.ContentType(), ModTime: f.r.ModTime(), Size: f.r.Size()}
}
func (f *flipReader) As(i any) bool { return f.r.As(i) }

func (d *faultyDriver) NewRangeReader(ctx context.Context, key string, offset, length int64, opts *driver.ReaderOptions) (driver.Reader, error) {
	r, err := d.inner.NewRangeReader(ctx, key, offset, length, &blob.ReaderOptions{BeforeRead: opts.BeforeRead})
	if err != nil {
		return nil, err
	}
	return &flipReader{r: r, flipped: !d.corruptRead}, nil
}

type bufWriter struct {
	ctx  context.Context
	d    *faultyDriver
	key  string
	opts *blob.WriterOptions
	buf  bytes.Buffer
}

func (w *bufWriter) Write(p []byte) (int, error) { return w.buf.Write(p) }
func (w *bufWriter) Close() error {
	b := w.buf.Bytes()
	if w.d.corruptWrite && len(b) > 0 {
		b[0] ^= 0xff
	}
	return w.d.inner.WriteAll(w.ctx, w.key, b, w.opts)
}

func (d *faultyDriver) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	return &bufWriter{ctx: ctx, d: d, key: key, opts: &blob.WriterOptions{ContentType: contentType}}, nil
}

func (d *faultyDriver) Copy(ctx context.Context, dstKey, srcKey string, opts *driver.CopyOptions) error {
	return d.inner.Copy(ctx, dstKey, srcKey, nil)
}

func (d *faultyDriver) Delete(ctx context.Context, key string, opts *driver.DeleteOptions) error {
	return d.inner.Delete(ctx, key)
}

func (d *faultyDriver) SignedURL(ctx context.Context, key string, opts *driver.SignedURLOptions) (string, error) {
	return "", errors.New("faultyDriver: no signed URLs")
}

// TestCopyCRC32COnGCS damages copies on the way from and to GCS where no MD5 can catch it (the
// damaged side reports none, as for a composed object): GCS's CRC32C does, the copy is deleted
// and the VerifyError names CRC32C. Intact copies from and to GCS count as CRC32C-checked.
func TestCopyCRC32COnGCS(t *testing.T) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	for _, tc := range []struct {
		name string
		// src and dst build the two buckets from a fresh GCS one.
		src, dst func(gcs *blob.Bucket) *blob.Bucket
		local    bool // the destination is taken to be a local directory (no checksums)
		onGCS    string
	}{
		{
			// Bytes damaged while read from GCS (a flaky network, a bad proxy): the CRC32C of the
			// bytes sent differs from the one GCS reports.
			name: "read-from-gcs",
			src:  func(g *blob.Bucket) *blob.Bucket { return faulty(g, faultyDriver{corruptRead: true, hideMD5: true}) },
			dst:  func(*blob.Bucket) *blob.Bucket { return memblob.OpenBucket(nil) },
			// Neither side's MD5 is usable: the source hides it, the destination's is of the
			// damaged bytes (it agrees with the bytes sent).
			onGCS: "src",
		},
		{
			name:  "read-from-gcs-to-local",
			src:   func(g *blob.Bucket) *blob.Bucket { return faulty(g, faultyDriver{corruptRead: true, hideMD5: true}) },
			dst:   func(*blob.Bucket) *blob.Bucket { return memblob.OpenBucket(nil) },
			local: true,
			onGCS: "src",
		},
		{
			// Bytes damaged on the way to GCS: GCS computes the CRC32C of what it received.
			name:  "written-to-gcs",
			src:   func(*blob.Bucket) *blob.Bucket { return faulty(memblob.OpenBucket(nil), faultyDriver{hideMD5: true}) },
			dst:   func(g *blob.Bucket) *blob.Bucket { return faulty(g, faultyDriver{corruptWrite: true, hideMD5: true}) },
			onGCS: "dst",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gsrc, gdst := gcsBackend(t).Open(t), gcsBackend(t).Open(t)
			src, dst := tc.src(gsrc.Bucket), tc.dst(gdst.Bucket)
			plainSrc := src // where the test writes the source's objects
			if tc.onGCS == "src" {
				plainSrc = gsrc.Bucket
			}
			for _, k := range []string{"in/bad.parquet", "in/good.parquet"} {
				if err := plainSrc.WriteAll(ctx, k, data, nil); err != nil {
					t.Fatal(err)
				}
			}
			c := newCopier(src, dst, tc.local, "src", 0, (&Options{}).withDefaults())
			err := c.copyAll(ctx, []fileRef{{key: "in/bad.parquet", path: "in/bad.parquet", size: int64(len(data))}})
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.What != "CRC32C" || ve.Path != "in/bad.parquet" {
				t.Fatalf("got %v", err)
			}
			t.Logf("%v", err)
			if ok, _ := dst.Exists(ctx, "in/bad.parquet"); ok {
				t.Fatal("the bad copy was left at the destination")
			}
			if s := c.snapshotStats(); s.FilesCopied != 0 {
				t.Fatalf("%+v", s)
			}
		})
	}

	// Intact copies from and to GCS are checked by CRC32C (and MD5).
	g := gcsBackend(t).Open(t)
	if err := g.Bucket.WriteAll(ctx, "in/a.parquet", data, nil); err != nil {
		t.Fatal(err)
	}
	mem := memblob.OpenBucket(nil)
	c := newCopier(g.Bucket, mem, false, "src", 0, (&Options{}).withDefaults())
	if err := c.copyAll(ctx, []fileRef{{key: "in/a.parquet", path: "in/a.parquet", size: int64(len(data))}}); err != nil {
		t.Fatal(err)
	}
	back := gcsBackend(t).Open(t).Bucket
	c2 := newCopier(mem, back, false, "src", 0, (&Options{}).withDefaults())
	if err := c2.copyAll(ctx, []fileRef{{key: "in/a.parquet", path: "in/a.parquet", size: int64(len(data))}}); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*copier{c, c2} {
		if s := c.snapshotStats(); s.FilesCopied != 1 || s.FilesCRC32C != 1 || s.FilesMD5 != 1 || s.FilesChecksummed != 1 {
			t.Fatalf("copy %d: %+v", i, s)
		}
	}
	got, err := back.ReadAll(ctx, "in/a.parquet")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("round trip: %v", err)
	}
}

func gcsBackend(t *testing.T) storagetest.Backend {
	for _, b := range storagetest.Backends(t) {
		if b.Name == "gcs" {
			return b
		}
	}
	t.Fatal("no gcs backend")
	return storagetest.Backend{}
}
