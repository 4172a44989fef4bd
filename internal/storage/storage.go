// Package storage opens the place where a table lives (a local directory, an in-process memory
// bucket, or a prefix of an S3, GCS or Azure Blob bucket) as a Location: a *blob.Bucket rooted at
// the table root, and the txlog.CommitStore for that kind of store.
//
// # URIs
//
//	./events, events, /data/events   a local directory (created if absent; not by OpenExisting)
//	file:///data/events              the same, as a URL
//	mem://NAME/prefix                a memory bucket shared by every Open of NAME in the process
//	s3://bucket/prefix?query         gocloud's s3blob URL, with the table under prefix
//	gs://bucket/prefix?query         gocloud's gcsblob URL
//	azblob://container/prefix?query  gocloud's azureblob URL
//
// The query is passed to the gocloud driver unchanged (endpoint, region, protocol, domain, ...);
// credentials come from the environment, as the gocloud drivers read them. A string without "://"
// is always a local path.
//
// # Writes
//
// Location.Bucket has the same write semantics on every store:
//   - A write becomes visible whole when Close (or Upload) returns nil, and not before.
//   - A write whose context ends before Close, or whose source fails during Upload, leaves
//     nothing at its key. A *blob.Writer that is simply closed after a partial write commits what
//     it was given: to abort one, cancel the context passed to NewWriter, as gocloud documents.
//   - WriterOptions.IfNotExist is exclusive on every store; on a local directory through link(2).
//   - Local writes are fsynced, file and directory, before Close returns. Their temporary files
//     live in the hidden directory .lake-tmp at the table root (Spark and Delta readers ignore
//     hidden directories), never appear in the Bucket's listings, and are removed before the
//     write returns; only a crash mid-write leaves one behind.
//
// Gocloud v0.47.0 does not give all of this by itself (azureblob's Writer panics when an upload
// fails; memblob, fileblob and gcsblob commit the part of an Upload whose source failed;
// fileblob's IfNotExist is not exclusive and its listings fail when a file vanishes mid-walk),
// so the Bucket is a thin wrapper over the driver's bucket; As and ErrorAs still reach the
// driver's types.
//
// # Errors
//
// Bucket errors carry gocloud codes (gcerrors.Code): NotFound for a missing object,
// FailedPrecondition for an IfNotExist write that found an object, InvalidArgument for a key that
// a local directory cannot hold (not a clean relative path, an element ending in "..", a name
// ending in ".attrs", a key under .lake-tmp/).
//
// Commits follows the txlog.CommitStore contract: nil when this call created the object, an
// error wrapping txlog.ErrVersionExists when one existed, any other error when the outcome is
// unknown. S3 can answer a conditional put that races another with 409 ConditionalRequestConflict,
// which is such an unknown outcome: read the object back to settle it.
//
// # Concurrency
//
// A Location, its Bucket and its Commits are safe for concurrent use. Any number of writers, in
// any number of processes, may call PutIfAbsent for the same key: exactly one creates it. On a
// local directory this holds for processes that share the filesystem with link(2) semantics
// (local disks; not every network filesystem). mem:// buckets are shared within one process only.
package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob://
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob" // gs://
	"gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob" // s3://

	"github.com/lakehouse/lake/txlog"
)

// Location is an opened table root.
type Location struct {
	// URI names the location in normalised form: the absolute directory for a local table,
	// otherwise scheme://bucket/prefix?query.
	URI string
	// Bucket holds the table's files, keyed relative to the table root
	// ("_delta_log/00000000000000000000.json", "part-00001.parquet").
	Bucket *blob.Bucket
	// Commits creates commit files atomically, only if absent.
	Commits txlog.CommitStore
	// LocalDir is the absolute directory of a local table, "" for other stores.
	LocalDir string

	commits *bucketCommits
}

// Open opens the table root named by uri (see the package comment for the forms). A local
// directory is created if absent; nothing is checked on object stores until the first request.
// The caller must Close the Location.
func Open(ctx context.Context, uri string) (*Location, error) { return open(ctx, uri, true) }

// OpenExisting is Open for a table root that must already exist, as for reading: a missing
// local directory is not created but is a *NoDirectoryError, which matches fs.ErrNotExist. Object stores and mem:// are opened as by Open (a prefix is not a thing that
// exists or not).
func OpenExisting(ctx context.Context, uri string) (*Location, error) { return open(ctx, uri, false) }

// NoDirectoryError reports a local table directory that does not exist (from OpenExisting).
type NoDirectoryError struct {
	Dir string // absolute
}

func (e *NoDirectoryError) Error() string {
	return fmt.Sprintf("storage: directory %s does not exist", e.Dir)
}

// Is makes a NoDirectoryError match fs.ErrNotExist.
func (e *NoDirectoryError) Is(target error) bool { return target == fs.ErrNotExist }

func open(ctx context.Context, uri string, create bool) (*Location, error) {
	if uri == "" {
		return nil, errors.New("storage: empty table URI")
	}
	if !strings.Contains(uri, "://") {
		return openLocal(uri, create)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("storage: table URI %q: %w", uri, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("storage: table URI %q: file URIs name a local path (file:///abs/path), not host %q", uri, u.Host)
		}
		if u.RawQuery != "" {
			return nil, fmt.Errorf("storage: table URI %q: file URIs take no query", uri)
		}
		return openLocal(u.Path, create)
	case "mem":
		if u.RawQuery != "" {
			return nil, fmt.Errorf("storage: table URI %q: mem URIs take no query", uri)
		}
		return openMem(u.Host, cleanPrefix(u.Path)), nil
	case "s3", "gs", "azblob":
		return openObject(ctx, u)
	}
	return nil, fmt.Errorf("storage: table URI %q: unsupported scheme %q; use a plain path, file://, mem://, s3://, gs:// or azblob://", uri, u.Scheme)
}

// Sub opens the location rel below l, for example "jobs/42/events" under a jobs prefix. rel is a
// slash-separated relative path without "." or ".." elements. The new Location is independent of
// l: each must be closed.
func (l *Location) Sub(ctx context.Context, rel string) (*Location, error) {
	if !fs.ValidPath(rel) || rel == "." {
		return nil, fmt.Errorf("storage: sub-location %q of %s: want a clean relative path", rel, l.URI)
	}
	if l.LocalDir != "" {
		return openLocal(filepath.Join(l.LocalDir, filepath.FromSlash(rel)), true)
	}
	scheme, rest, _ := strings.Cut(l.URI, "://")
	rest, query, _ := strings.Cut(rest, "?")
	bucket, prefix, _ := strings.Cut(rest, "/")
	prefix, err := url.PathUnescape(prefix)
	if err != nil {
		return nil, fmt.Errorf("storage: sub-location %q of %s: %w", rel, l.URI, err)
	}
	if scheme == "mem" {
		return openMem(bucket, path.Join(prefix, rel)), nil
	}
	return openObject(ctx, &url.URL{Scheme: scheme, Host: bucket, Path: "/" + path.Join(prefix, rel), RawQuery: query})
}

// Close releases the location's bucket. Calls on the Location after Close fail; Close itself may
// be called again and then does nothing.
func (l *Location) Close() error {
	if l.commits.closed.Swap(true) {
		return nil
	}
	return l.Bucket.Close()
}

func newLocation(uri string, b *blob.Bucket, localDir string) *Location {
	c := &bucketCommits{bucket: b}
	return &Location{URI: uri, Bucket: b, Commits: c, LocalDir: localDir, commits: c}
}

func openLocal(dir string, create bool) (*Location, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: table directory %q: %w", dir, err)
	}
	if !create {
		fi, err := os.Stat(abs)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, &NoDirectoryError{Dir: abs}
		case err != nil:
			return nil, fmt.Errorf("storage: table directory: %w", err)
		case !fi.IsDir():
			return nil, fmt.Errorf("storage: table directory %s is a file, not a directory", abs)
		}
	}
	return openLocalFS(&localFS{dir: abs})
}

func openLocalFS(l *localFS) (*Location, error) {
	if err := os.MkdirAll(l.dir, 0o777); err != nil {
		return nil, fmt.Errorf("storage: table directory: %w", err)
	}
	// fileblob serves reads, listings and deletes; localFS does every write.
	fb, err := fileblob.OpenBucket(l.dir, &fileblob.Options{
		// No ".attrs" sidecar files: table folders stay clean for other engines.
		Metadata: fileblob.MetadataDontWrite,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: table directory %s: %w", l.dir, err)
	}
	return newLocation(l.dir, newWrapped(fb, l, false), l.dir), nil
}

// mem holds the process's memory buckets by name; they live as long as the process.
var mem struct {
	mu      sync.Mutex
	buckets map[string]*blob.Bucket
}

func openMem(name, prefix string) *Location {
	mem.mu.Lock()
	b, ok := mem.buckets[name]
	if !ok {
		if mem.buckets == nil {
			mem.buckets = make(map[string]*blob.Bucket)
		}
		b = memblob.OpenBucket(nil)
		mem.buckets[name] = b
	}
	mem.mu.Unlock()
	return newLocation(objectURI("mem", name, prefix, ""), withPrefix(newWrapped(b, nil, true), prefix), "")
}

func openObject(ctx context.Context, u *url.URL) (*Location, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("storage: table URI %q names no bucket", u.Redacted())
	}
	prefix := cleanPrefix(u.Path)
	root := u.Scheme + "://" + u.Host
	if u.RawQuery != "" {
		root += "?" + u.RawQuery
	}
	b, err := blob.OpenBucket(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("storage: opening %s: %w", u.Redacted(), err)
	}
	return newLocation(objectURI(u.Scheme, u.Host, prefix, u.RawQuery), withPrefix(newWrapped(b, nil, false), prefix), ""), nil
}

func withPrefix(b *blob.Bucket, prefix string) *blob.Bucket {
	if prefix == "" {
		return b
	}
	return blob.PrefixedBucket(b, prefix+"/")
}

// cleanPrefix turns a URL path into a key prefix without leading or trailing slashes.
func cleanPrefix(p string) string {
	return strings.Trim(path.Clean("/"+p), "/")
}

func objectURI(scheme, bucket, prefix, query string) string {
	s := scheme + "://" + bucket
	if prefix != "" {
		s += (&url.URL{Path: "/" + prefix}).EscapedPath()
	}
	if query != "" {
		s += "?" + query
	}
	return s
}

// bucketCommits is the CommitStore of every Location: a conditional Upload, which the Location's
// Bucket makes exclusive on every store (see wrapDriver).
type bucketCommits struct {
	bucket *blob.Bucket
	closed atomic.Bool
}

func (c *bucketCommits) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if c.closed.Load() {
		// Checked here because a closed *blob.Bucket fails with FailedPrecondition, which
		// would read as "already exists".
		return errLocationClosed
	}
	err := c.bucket.Upload(ctx, key, bytes.NewReader(data), &blob.WriterOptions{
		IfNotExist:  true,
		ContentType: contentTypeFor(key),
	})
	switch {
	case err == nil:
		return nil
	case c.closed.Load():
		return fmt.Errorf("storage: creating %s: outcome unknown: %w", key, errLocationClosed)
	}
	return commitError(key, err)
}
