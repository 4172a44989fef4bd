package reader

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"gocloud.dev/blob"

	"github.com/lakehouse/lake/internal/storage"
)

// ShallowSourceProperty is the table property of a shallow clone (`lake clone --shallow`): the
// URI of the table whose files its add actions name by absolute URI. The reader reads those
// files through a bucket of that location (opened from the URI, so its query string, with an
// S3 endpoint or region, applies), and refuses absolute paths anywhere else.
const ShallowSourceProperty = "lake.shallowClone.source"

// foreignSource is a shallow clone's source location.
type foreignSource struct {
	uri  string // the source table's URI, as the property holds it
	base string // the prefix its files' absolute URIs start with, without the trailing slash
}

func newForeignSource(uri string) *foreignSource {
	if uri == "" {
		return nil
	}
	base, _, _ := strings.Cut(uri, "?")
	if !strings.Contains(base, "://") { // a local table: its files are file:///abs/path/key
		base = (&url.URL{Scheme: "file", Path: base}).String()
	}
	return &foreignSource{uri: uri, base: strings.TrimSuffix(base, "/")}
}

// key returns the bucket and key of p when p names a file of the source; ok is false otherwise.
func (f *foreignSource) key(ctx context.Context, p string) (b *blob.Bucket, key string, ok bool, err error) {
	if f == nil || !strings.HasPrefix(p, f.base+"/") {
		return nil, "", false, nil
	}
	k, err := url.PathUnescape(p[len(f.base)+1:])
	if err != nil {
		return nil, "", true, fmt.Errorf("path %q is not a valid URI: %w", p, err)
	}
	if k, err = cleanKey(k, p); err != nil {
		return nil, "", true, err
	}
	loc, err := foreignLocation(ctx, f.uri)
	if err != nil {
		return nil, "", true, fmt.Errorf("shallow clone source %s: %w", f.uri, err)
	}
	return loc.Bucket, k, true, nil
}

// foreignLocations holds the locations opened for shallow-clone sources, one per URI for the
// life of the process (a server reading a clone reads its source again and again).
var foreignLocations struct {
	sync.Mutex
	m map[string]*storage.Location
}

func foreignLocation(ctx context.Context, uri string) (*storage.Location, error) {
	foreignLocations.Lock()
	defer foreignLocations.Unlock()
	if l, ok := foreignLocations.m[uri]; ok {
		return l, nil
	}
	l, err := storage.Open(ctx, uri)
	if err != nil {
		return nil, err
	}
	if foreignLocations.m == nil {
		foreignLocations.m = map[string]*storage.Location{}
	}
	foreignLocations.m[uri] = l
	return l, nil
}

// resolve maps a path of the log to a bucket and key: the table's own files, else a shallow
// clone's source files; anything else is the resolver's error.
func (s *Scan) resolve(ctx context.Context, p string) (*blob.Bucket, string, error) {
	k, err := s.res.key(p)
	if err == nil {
		return s.bucket, k, nil
	}
	var ue *UnsupportedError
	if !errors.As(err, &ue) {
		return nil, "", err
	}
	b, fk, ok, ferr := s.foreign.key(ctx, p)
	if !ok {
		return nil, "", err
	}
	return b, fk, ferr
}
