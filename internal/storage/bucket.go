package storage

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
)

// wrapDriver is a gocloud blob driver over another *blob.Bucket. Every Location's Bucket is one;
// it exists to give all stores the same write semantics, which gocloud v0.47.0 does not:
//
//   - Every write goes through the inner bucket's Upload. azureblob's NewWriter path panics in
//     Close (a nil pipe) whenever the upload fails: a losing conditional write, a missing
//     container, a network error. Its Upload path is correct.
//   - A write whose source fails never becomes visible. blob.Bucket.Upload closes the driver
//     writer after a failed read, and memblob, fileblob and gcsblob then commit the part they
//     got; here the write's context is cancelled first, so they abort.
//   - On a local directory, writes go to localFS: atomic, fsynced, and IfNotExist really
//     exclusive (fileblob checks, then renames). Listings leave localFS's temporary files out
//     and retry fileblob's failure on files that vanish while it walks.
//   - mem:// buckets are shared between Locations: Close leaves the inner bucket open.
type wrapDriver struct {
	inner  *blob.Bucket
	local  *localFS // non-nil for a local directory: writes go here instead of to inner
	shared bool     // Close leaves inner open
}

var _ driver.Bucket = (*wrapDriver)(nil)

func newWrapped(inner *blob.Bucket, local *localFS, shared bool) *blob.Bucket {
	return blob.NewBucket(&wrapDriver{inner: inner, local: local, shared: shared})
}

func (d *wrapDriver) ErrorCode(err error) gcerrors.ErrorCode { return errorCode(err) }

func (d *wrapDriver) As(i any) bool { return d.inner.As(i) }

func (d *wrapDriver) ErrorAs(err error, i any) bool {
	var ce *codedError
	if errors.As(err, &ce) {
		err = ce.err
	}
	return d.inner.ErrorAs(err, i)
}

func (d *wrapDriver) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	a, err := d.inner.Attributes(ctx, key)
	if err != nil {
		return nil, fromBlob(err)
	}
	return &driver.Attributes{
		CacheControl:       a.CacheControl,
		ContentDisposition: a.ContentDisposition,
		ContentEncoding:    a.ContentEncoding,
		ContentLanguage:    a.ContentLanguage,
		ContentType:        a.ContentType,
		Metadata:           a.Metadata,
		CreateTime:         a.CreateTime,
		ModTime:            a.ModTime,
		Size:               a.Size,
		MD5:                a.MD5,
		ETag:               a.ETag,
		AsFunc:             a.As,
	}, nil
}

const (
	defaultPageSize = 1000
	listRetries     = 10
)

func (d *wrapDriver) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	token := opts.PageToken
	if len(token) == 0 {
		token = blob.FirstPageToken
	}
	size := opts.PageSize
	if size <= 0 {
		size = defaultPageSize
	}
	lopts := &blob.ListOptions{Prefix: opts.Prefix, Delimiter: opts.Delimiter, BeforeList: opts.BeforeList}
	objs, next, err := d.inner.ListPage(ctx, token, size, lopts)
	// fileblob fails a listing when a file it walks vanishes before it is stat-ed: a temporary
	// file, or a file another writer deletes. Such a listing is retried; a missing prefix lists
	// as empty, so NotFound means nothing else here.
	for try := 0; d.local != nil && try < listRetries && gcerrors.Code(err) == gcerrors.NotFound; try++ {
		objs, next, err = d.inner.ListPage(ctx, token, size, lopts)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fromBlob(err)
	}
	page := &driver.ListPage{Objects: make([]*driver.ListObject, 0, len(objs)), NextPageToken: next}
	for _, o := range objs {
		if d.local != nil && isTempKey(strings.TrimSuffix(o.Key, "/")) {
			continue
		}
		page.Objects = append(page.Objects, &driver.ListObject{
			Key:     o.Key,
			ModTime: o.ModTime,
			Size:    o.Size,
			MD5:     o.MD5,
			IsDir:   o.IsDir,
			AsFunc:  o.As,
		})
	}
	return page, nil
}

func (d *wrapDriver) NewRangeReader(ctx context.Context, key string, offset, length int64, opts *driver.ReaderOptions) (driver.Reader, error) {
	r, err := d.inner.NewRangeReader(ctx, key, offset, length, &blob.ReaderOptions{BeforeRead: opts.BeforeRead})
	if err != nil {
		return nil, fromBlob(err)
	}
	return &reader{r: r, attrs: driver.ReaderAttributes{ContentType: r.ContentType(), ModTime: r.ModTime(), Size: r.Size()}}, nil
}

type reader struct {
	r     *blob.Reader
	attrs driver.ReaderAttributes
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	return n, fromBlob(err)
}
func (r *reader) Close() error                         { return fromBlob(r.r.Close()) }
func (r *reader) Attributes() *driver.ReaderAttributes { return &r.attrs }
func (r *reader) As(i any) bool                        { return r.r.As(i) }

func (d *wrapDriver) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	if d.local != nil {
		if _, err := d.local.path(key); err != nil {
			return nil, err
		}
	}
	if contentType == "" {
		// Only with DisableContentTypeDetection; the inner Upload insists on a type.
		contentType = "application/octet-stream"
	}
	ctx, cancel := context.WithCancel(ctx)
	return &writer{
		ctx:    ctx,
		cancel: cancel,
		d:      d,
		key:    key,
		opts: &blob.WriterOptions{
			// ContentMD5 is left out: the outer *blob.Writer checks it before Close, and with it
			// the inner Upload would take azureblob's NewWriter path.
			BufferSize:                  opts.BufferSize,
			MaxConcurrency:              opts.MaxConcurrency,
			CacheControl:                opts.CacheControl,
			ContentDisposition:          opts.ContentDisposition,
			ContentEncoding:             opts.ContentEncoding,
			ContentLanguage:             opts.ContentLanguage,
			ContentType:                 contentType,
			DisableContentTypeDetection: opts.DisableContentTypeDetection,
			Metadata:                    opts.Metadata,
			BeforeWrite:                 opts.BeforeWrite,
			IfNotExist:                  opts.IfNotExist,
		},
	}, nil
}

// writer sends its data through one call of upload: the reader given to Upload, or a pipe fed by
// Write. Nothing becomes visible before Close, and nothing at all if the context ends or the
// source fails first.
type writer struct {
	ctx    context.Context // cancelled to abort
	cancel context.CancelFunc
	d      *wrapDriver
	key    string
	opts   *blob.WriterOptions

	src io.Reader // set by Upload

	// Set by the first Write.
	pw   *io.PipeWriter
	done chan struct{}
	err  error // result of the upload, written before done closes
}

var _ driver.Uploader = (*writer)(nil)

// Upload records r; Close sends it. blob.Bucket.Upload always calls Close next.
func (w *writer) Upload(r io.Reader) error {
	w.src = r
	return nil
}

func (w *writer) Write(p []byte) (int, error) {
	if w.src != nil {
		return 0, errors.New("storage: Write after Upload")
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.pw == nil {
		pr, pw := io.Pipe()
		w.pw, w.done = pw, make(chan struct{})
		go func() {
			defer close(w.done)
			w.err = w.d.upload(w.ctx, w.cancel, w.key, pr, w.opts)
			// Unblock Write if the upload ended before reading everything.
			if w.err != nil {
				pr.CloseWithError(w.err)
			} else {
				pr.CloseWithError(errors.New("storage: upload finished early"))
			}
		}()
	}
	return w.pw.Write(p)
}

func (w *writer) Close() error {
	defer w.cancel()
	if w.pw == nil {
		src := w.src
		if src == nil {
			src = eofReader{} // nothing written: an empty object, as in gocloud
		}
		return w.d.upload(w.ctx, w.cancel, w.key, src, w.opts)
	}
	if err := w.ctx.Err(); err != nil {
		// Aborted: make the upload's read fail as well as its context.
		w.pw.CloseWithError(err)
	} else {
		w.pw.Close()
	}
	<-w.done
	return w.err
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// upload writes all of r at key. If r fails, cancel is called before the error is returned, so
// that the store aborts instead of committing what it read.
func (d *wrapDriver) upload(ctx context.Context, cancel context.CancelFunc, key string, r io.Reader, opts *blob.WriterOptions) error {
	ar := &abortReader{r: r, abort: cancel}
	var err error
	if d.local != nil {
		err = d.local.put(ctx, key, ar, opts.IfNotExist)
	} else {
		err = fromBlob(d.inner.Upload(ctx, key, ar, opts))
	}
	if rerr := ar.failure(); err != nil && rerr != nil {
		return rerr // the source's error explains the abort better than the context's
	}
	return err
}

// abortReader calls abort when its reader fails, before passing the error on.
type abortReader struct {
	r     io.Reader
	abort context.CancelFunc

	mu  sync.Mutex
	err error
}

func (a *abortReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if err != nil && err != io.EOF {
		a.mu.Lock()
		if a.err == nil {
			a.err = err
		}
		a.mu.Unlock()
		a.abort()
	}
	return n, err
}

func (a *abortReader) failure() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (d *wrapDriver) Copy(ctx context.Context, dstKey, srcKey string, opts *driver.CopyOptions) error {
	if d.local != nil {
		// fileblob's Copy writes through its own writer; go through localFS instead.
		r, err := d.inner.NewReader(ctx, srcKey, nil)
		if err != nil {
			return fromBlob(err)
		}
		defer r.Close()
		return d.local.put(ctx, dstKey, &readErr{r}, false)
	}
	return fromBlob(d.inner.Copy(ctx, dstKey, srcKey, &blob.CopyOptions{BeforeCopy: opts.BeforeCopy}))
}

// readErr strips gocloud's wrapping from a *blob.Reader's errors.
type readErr struct{ r *blob.Reader }

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	return n, fromBlob(err)
}

func (d *wrapDriver) Delete(ctx context.Context, key string, opts *driver.DeleteOptions) error {
	return fromBlob(d.inner.DeleteWithOptions(ctx, key, &blob.DeleteOptions{BeforeDelete: opts.BeforeDelete}))
}

func (d *wrapDriver) SignedURL(ctx context.Context, key string, opts *driver.SignedURLOptions) (string, error) {
	u, err := d.inner.SignedURL(ctx, key, &blob.SignedURLOptions{
		Expiry:                   opts.Expiry,
		Method:                   opts.Method,
		ContentType:              opts.ContentType,
		EnforceAbsentContentType: opts.EnforceAbsentContentType,
		BeforeSign:               opts.BeforeSign,
	})
	return u, fromBlob(err)
}

func (d *wrapDriver) Close() error {
	if d.shared {
		return nil
	}
	return d.inner.Close()
}
