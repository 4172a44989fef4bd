package reader

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// resolver maps the paths of add actions and deletion vectors to keys of the table's bucket.
type resolver struct {
	bucket   *blob.Bucket
	uri      string // the table's normalised URI
	localDir string // the table's directory for a local table
}

// key returns the bucket key of a path as the log stores it: a URL-encoded path relative to the
// table root (decoded once: "x=A%252FA/p" is the object "x=A%2FA/p"), or an absolute URI
// inside the table's location (file:// for a local table, the table's own bucket and prefix
// otherwise). Anything else is an unsupported feature, never a silent guess.
func (r *resolver) key(p string) (string, error) {
	if !strings.Contains(p, "://") && !strings.HasPrefix(p, "file:/") {
		k, err := url.PathUnescape(p)
		if err != nil {
			return "", fmt.Errorf("path %q is not a valid URL-encoded path: %w", p, err)
		}
		return cleanKey(k, p)
	}
	u, err := url.Parse(p)
	if err != nil {
		return "", fmt.Errorf("path %q is not a valid URI: %w", p, err)
	}
	if u.Scheme == "file" {
		if r.localDir == "" {
			return "", unsupported("a file:// path in a table on an object store", fmt.Sprintf("%s in the table at %s", p, r.uri))
		}
		rel, err := filepath.Rel(r.localDir, filepath.FromSlash(u.Path))
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", unsupported("a file outside the table's directory", fmt.Sprintf("%s in the table at %s", p, r.localDir))
		}
		return cleanKey(filepath.ToSlash(rel), p)
	}
	scheme, rest, _ := strings.Cut(r.uri, "://")
	rest, _, _ = strings.Cut(rest, "?")
	bucket, prefix, _ := strings.Cut(rest, "/")
	if prefix, err = url.PathUnescape(prefix); err != nil {
		return "", err
	}
	prefix = strings.Trim(prefix, "/")
	if u.Scheme != scheme || u.Host != bucket {
		return "", unsupported("a file in another store", fmt.Sprintf("%s in the table at %s", p, r.uri))
	}
	up := strings.TrimPrefix(u.Path, "/")
	if prefix != "" {
		if !strings.HasPrefix(up, prefix+"/") {
			return "", unsupported("a file outside the table's prefix", fmt.Sprintf("%s in the table at %s", p, r.uri))
		}
		up = up[len(prefix)+1:]
	}
	return cleanKey(up, p)
}

func cleanKey(k, orig string) (string, error) {
	c := path.Clean(k)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") || strings.HasPrefix(c, "/") {
		return "", fmt.Errorf("path %q does not name a file inside the table", orig)
	}
	return c, nil
}

// object is a Parquet file in the bucket: an io.ReaderAt that issues ranged reads.
//
// It holds the context of the scan that opened it because io.ReaderAt has no context argument;
// it lives only while that scan reads the one file.
type object struct {
	ctx    context.Context
	bucket *blob.Bucket
	key    string
	size   int64
	pos    int64
	read   *atomic.Int64 // bytes fetched, for Metrics
}

func (o *object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	if off >= o.size {
		return 0, io.EOF
	}
	want := len(p)
	if rem := o.size - off; int64(want) > rem {
		want = int(rem)
	}
	r, err := o.bucket.NewRangeReader(o.ctx, o.key, off, int64(want), nil)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	n, err := io.ReadFull(r, p[:want])
	o.read.Add(int64(n))
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return n, fmt.Errorf("file is shorter than the %d bytes the log records (read %d bytes at offset %d): %w", o.size, n, off, io.ErrUnexpectedEOF)
		}
		return n, err
	}
	if want < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (o *object) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.pos
	case io.SeekEnd:
		offset += o.size
	default:
		return 0, fmt.Errorf("invalid whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("negative position %d", offset)
	}
	o.pos = offset
	return offset, nil
}

// wholeFileLimit: files up to this size are read with one request.
var wholeFileLimit int64 = 2 << 20

// openObject returns a reader for the object at key. size is the size the log records (0 or
// less: ask the store). Small files are read whole.
func openObject(ctx context.Context, b *blob.Bucket, key string, size int64, read *atomic.Int64) (interface {
	io.ReaderAt
	io.Seeker
}, int64, error) {
	if size <= 0 {
		a, err := b.Attributes(ctx, key)
		if err != nil {
			return nil, 0, notFound(err)
		}
		size = a.Size
	}
	if size <= wholeFileLimit {
		data, err := b.ReadAll(ctx, key)
		if err != nil {
			return nil, 0, notFound(err)
		}
		read.Add(int64(len(data)))
		if int64(len(data)) < size {
			return nil, 0, fmt.Errorf("file has %d bytes, the log records %d (truncated?)", len(data), size)
		}
		return bytes.NewReader(data), int64(len(data)), nil
	}
	return &object{ctx: ctx, bucket: b, key: key, size: size, read: read}, size, nil
}

// readRange reads n bytes at off of the object at key (fewer at the end of the object).
func readRange(ctx context.Context, b *blob.Bucket, key string, off, n int64, read *atomic.Int64) ([]byte, error) {
	r, err := b.NewRangeReader(ctx, key, off, n, nil)
	if err != nil {
		return nil, notFound(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	read.Add(int64(len(data)))
	return data, err
}

func notFound(err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("file not found (deleted by vacuum, or the table was copied without it): %w", err)
	}
	return err
}
