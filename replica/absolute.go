package replica

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/lakehouse/lake/internal/storage"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// A deep clone of a table whose adds name files by absolute URI (a shallow clone, whose files
// are its source's) copies those files into the clone's root and names them by relative path
// there: the clone owns all its files, and nothing done to the shallow clone's source (vacuum,
// deletion) reaches it.

// rootBase is the prefix the absolute URIs of the files of the table at uri start with, without
// the trailing slash: file:///abs/dir for a local table, scheme://bucket/prefix (no query
// string) otherwise. It is what absoluteURI and the reader's shallow-clone resolution use.
func rootBase(uri, localDir string) string {
	if localDir != "" {
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(localDir)}).String()
	}
	base, _, _ := strings.Cut(uri, "?")
	if !strings.Contains(base, "://") { // a local path as a shallow clone's property holds it
		base = (&url.URL{Scheme: "file", Path: base}).String()
	}
	return strings.TrimSuffix(base, "/")
}

// absRoot is a location absolute paths may point into.
type absRoot struct {
	base string
	loc  *storage.Location // nil: the table's own root (its bucket is the copier's source)
	uri  string
}

// absResolver maps the absolute paths of a table's log to the location and key of the file:
// inside the table's own root, or inside its shallow-clone source (ShallowSourceProperty), the
// two places lake's reader reads absolute paths from.
type absResolver struct {
	roots []absRoot
}

func newAbsResolver(ctx context.Context, st *table.Table, snap *txlog.Snapshot) (*absResolver, error) {
	r := &absResolver{roots: []absRoot{{base: rootBase(st.URI(), st.LocalDir()), uri: st.URI()}}}
	if src := snap.Configuration()[ShallowSourceProperty]; src != "" {
		loc, err := storage.Open(ctx, src)
		if err != nil {
			return nil, fmt.Errorf("the shallow clone's source %s: %w", src, err)
		}
		r.roots = append(r.roots, absRoot{base: rootBase(src, loc.LocalDir), loc: loc, uri: src})
	}
	return r, nil
}

func (r *absResolver) Close() {
	for _, root := range r.roots {
		if root.loc != nil {
			root.loc.Close()
		}
	}
}

// resolve returns the root p is in and p's key there.
func (r *absResolver) resolve(p string) (*absRoot, string, error) {
	for i := range r.roots {
		root := &r.roots[i]
		if !strings.HasPrefix(p, root.base+"/") {
			continue
		}
		k, err := relKey(p[len(root.base)+1:])
		if err != nil {
			return nil, "", err
		}
		return root, k, nil
	}
	return nil, "", fmt.Errorf("file %s is outside the table and outside the source its %s property names: lake reads no files from elsewhere, so it does not copy them", p, ShallowSourceProperty)
}

// ref returns the fileRef that copies p (absolute) to key at the destination.
func (r *absResolver) ref(root *absRoot, srcKey, key, p string, size, version int64) fileRef {
	f := fileRef{key: key, path: p, size: size, version: version}
	if root.loc != nil {
		f.from, f.fromURI = root.loc.Bucket, root.uri
	}
	if srcKey != key {
		f.srcKey = srcKey
	}
	return f
}

// keyPlanner hands out destination keys: each wanted key as it is unless another file has it,
// then the same folder and extension with a short hash of the file's absolute URI in the name
// (stable, so a retried clone chooses the same keys).
type keyPlanner struct {
	used map[string]string // key -> the URI or path of the file that has it
}

func (k *keyPlanner) take(key, owner string) string {
	if k.used == nil {
		k.used = map[string]string{}
	}
	for i := 0; ; i++ {
		cand := key
		if i > 0 {
			sum := sha256.Sum256([]byte(fmt.Sprintf("%s#%d", owner, i)))
			dir, base := path.Split(key)
			ext := path.Ext(base)
			cand = dir + strings.TrimSuffix(base, ext) + "-c" + hex.EncodeToString(sum[:4]) + ext
		}
		if o, ok := k.used[cand]; !ok || o == owner {
			k.used[cand] = owner
			return cand
		}
	}
}

// escapedPath is key as a relative log path (URL-encoded, as Delta writes paths).
func escapedPath(key string) string { return (&url.URL{Path: key}).EscapedPath() }

var dvName = regexp.MustCompile(`^deletion_vector_([0-9a-fA-F-]{36})\.bin$`)

// relativeDV turns a deletion vector stored at an absolute URI ('p') into one stored in the
// clone's root ('u'): the file keeps its UUID when its name is the protocol's
// deletion_vector_<uuid>.bin (a shallow clone's 'u' vectors turned 'p'), else gets a UUID derived
// from its URI. It returns the new descriptor and the file's key at the destination; the key
// is planned with keys, like data files' keys.
func relativeDV(dv *txlog.DeletionVector, srcKey string, keys *keyPlanner) (*txlog.DeletionVector, string, error) {
	dir, base := path.Split(srcKey)
	dir = strings.TrimSuffix(dir, "/")
	var id uuid.UUID
	if m := dvName.FindStringSubmatch(base); m != nil {
		id, _ = uuid.Parse(m[1])
	}
	if id == uuid.Nil {
		id = uuid.NewSHA1(uuid.NameSpaceURL, []byte(dv.PathOrInlineDv))
	}
	// A 'u' path is an optional prefix (a folder) and the UUID in Z85; keep the file's folder
	// when it has no character the prefix cannot hold.
	if strings.ContainsAny(dir, "/%") {
		dir = ""
	}
	for i := 0; ; i++ {
		if i > 0 {
			id = uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "%s#%d", dv.PathOrInlineDv, i))
		}
		d := *dv
		d.StorageType = "u"
		d.PathOrInlineDv = dir + z85Encode(id[:])
		key, err := dvKey(d.PathOrInlineDv)
		if err != nil {
			return nil, "", err
		}
		if keys.take(key, dv.PathOrInlineDv) == key {
			return &d, key, nil
		}
	}
}

// z85Encode encodes b (a multiple of 4 bytes) in Z85, the encoding of 'u' deletion vector
// paths.
func z85Encode(b []byte) string {
	out := make([]byte, 0, len(b)/4*5)
	for i := 0; i+4 <= len(b); i += 4 {
		v := uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
		var block [5]byte
		for j := 4; j >= 0; j-- {
			block[j] = z85Alphabet[v%85]
			v /= 85
		}
		out = append(out, block[:]...)
	}
	return string(out)
}
