package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/lakehouse/lake/internal/storage"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// ShallowSourceProperty is the table property a shallow clone carries: the source table's URI
// (its files are the clone's files; a vacuum there breaks the clone).
const ShallowSourceProperty = reader.ShallowSourceProperty

// CloneOptions configure Clone. A nil *CloneOptions clones the latest version, deep.
type CloneOptions struct {
	Options
	// Version is the source version to clone (nil: the latest).
	Version *int64
	// Shallow writes add actions that name the source's files by absolute URI instead of
	// copying them.
	Shallow bool
}

// CloneResult describes a clone.
type CloneResult struct {
	SourceVersion int64
	// TableID is the clone's new metaData.id (a clone is a new table with its own history).
	TableID string
	Files   int   // data files in the clone's version 0
	Bytes   int64 // their total size
	// MadeRelative counts the data files the source names by absolute URI (a shallow clone's)
	// that a deep clone copied into its root and names by relative path.
	MadeRelative int
	Stats
}

// Clone creates a table at dst whose version 0 holds the snapshot of src at opts.Version: the
// same protocol, schema, partition columns, properties, name and description under a new table
// id, and the same data files with their statistics, partition values, tags and deletion
// vectors. A deep clone copies the files (and deletion-vector files) under the same relative
// paths and verifies them before committing; a shallow clone copies nothing and points at the
// source's files by absolute URI. A deep clone of a table whose files are named by absolute URI
// (a shallow clone: its source's files) copies those too, under their path relative to the root
// they are in (another name in the same folder where that path is taken), and names them by
// that relative path: the clone's log has relative paths only, 'p' deletion vectors become 'u',
// and the property ShallowSourceProperty is dropped. Absolute paths outside the table and its
// shallow-clone source are refused, as lake's reader refuses them. commitInfo says operation CLONE with operationParameters
// source, sourceVersion and isShallow, as Delta records a clone.
//
// dst must be empty: any object there is an error matching ErrNotEmpty, before anything is
// copied. Files already copied by a failed earlier Clone are not copied again when it is
// retried, as long as no commit was made.
func Clone(ctx context.Context, src, dst string, opts *CloneOptions) (*CloneResult, error) {
	var o CloneOptions
	if opts != nil {
		o = *opts
	}
	o.Options = o.Options.withDefaults()
	st, err := table.Open(ctx, src, nil)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var snap *txlog.Snapshot
	if o.Version != nil {
		snap, err = st.SnapshotAt(ctx, *o.Version)
	} else {
		snap, err = st.Snapshot(ctx)
	}
	if err != nil {
		return nil, err
	}
	p := snap.Protocol()
	if err := p.CheckWrite(snap.Schema()); err != nil {
		return nil, fmt.Errorf("clone %s: %w", src, err)
	}
	dl, err := storage.Open(ctx, dst)
	if err != nil {
		return nil, err
	}
	defer dl.Close()

	files := snap.Files()
	adds := make([]txlog.Action, 0, len(files)+len(snap.Domains()))
	var refs []fileRef
	var bytes int64
	var keys keyPlanner
	var abs *absResolver
	madeRelative := 0
	if !o.Shallow {
		// Relative files keep their keys; files named by absolute URI get keys no relative file
		// has.
		for _, f := range files {
			if !isAbsolute(f.Path) {
				k, err := relKey(f.Path)
				if err != nil {
					return nil, fmt.Errorf("clone %s: %w", src, err)
				}
				keys.take(k, f.Path)
			}
			if dv := f.DeletionVector; dv != nil && dv.StorageType == "u" {
				k, err := dvKey(dv.PathOrInlineDv)
				if err != nil {
					return nil, fmt.Errorf("clone %s: %w", src, err)
				}
				keys.take(k, dv.PathOrInlineDv)
			}
		}
		defer func() {
			if abs != nil {
				abs.Close()
			}
		}()
	}
	resolve := func(p string) (*absRoot, string, error) {
		if abs == nil {
			if abs, err = newAbsResolver(ctx, st, snap); err != nil {
				return nil, "", err
			}
		}
		return abs.resolve(p)
	}
	for _, f := range files {
		a := *f
		a.DataChange = true
		bytes += a.Size
		if o.Shallow {
			if a.Path, err = absoluteURI(st, a.Path); err != nil {
				return nil, err
			}
			if dv := a.DeletionVector; dv != nil && dv.StorageType == "u" {
				k, err := dvKey(dv.PathOrInlineDv)
				if err != nil {
					return nil, err
				}
				d := *dv
				d.StorageType = "p"
				if d.PathOrInlineDv, err = absoluteURI(st, (&url.URL{Path: k}).EscapedPath()); err != nil {
					return nil, err
				}
				a.DeletionVector = &d
			}
			adds = append(adds, txlog.Action{Add: &a})
			continue
		}
		rs, _, err := filesOf(&txlog.Action{Add: f}, snap.Version())
		if err != nil {
			return nil, fmt.Errorf("clone %s: %w", src, err)
		}
		refs = append(refs, rs...)
		if isAbsolute(f.Path) {
			root, sk, err := resolve(f.Path)
			if err != nil {
				return nil, fmt.Errorf("clone %s: %w", src, err)
			}
			key := keys.take(sk, f.Path)
			refs = append(refs, abs.ref(root, sk, key, f.Path, f.Size, snap.Version()))
			a.Path = escapedPath(key)
			madeRelative++
		}
		if dv := f.DeletionVector; dv != nil && dv.StorageType == "p" {
			root, sk, err := resolve(dv.PathOrInlineDv)
			if err != nil {
				return nil, fmt.Errorf("clone %s: deletion vector of %s: %w", src, f.Path, err)
			}
			d, key, err := relativeDV(dv, sk, &keys)
			if err != nil {
				return nil, fmt.Errorf("clone %s: %w", src, err)
			}
			refs = append(refs, abs.ref(root, sk, key, dv.PathOrInlineDv, -1, snap.Version()))
			a.DeletionVector = d
		}
		adds = append(adds, txlog.Action{Add: &a})
	}
	for _, d := range snap.Domains() {
		adds = append(adds, txlog.Action{DomainMetadata: &d})
	}

	allowed := make(map[string]bool, len(refs))
	for _, r := range refs {
		allowed[r.key] = true
	}
	present, err := checkCloneTarget(ctx, dl, allowed)
	if err != nil {
		return nil, err
	}
	c := newCopier(st.Bucket(), dl.Bucket, dl.LocalDir != "", src, snap.Version(), o.Options)
	c.present = present
	if !o.Shallow {
		if err := c.copyAll(ctx, refs); err != nil {
			return nil, fmt.Errorf("clone %s to %s: %w", src, dst, err)
		}
	}

	md := snap.Metadata()
	md.ID = uuid.NewString()
	now := time.Now().UnixMilli()
	md.CreatedTime = &now
	md.Configuration = maps.Clone(md.Configuration)
	if md.Configuration == nil {
		md.Configuration = map[string]string{}
	}
	if o.Shallow {
		md.Configuration[ShallowSourceProperty] = st.URI()
	} else {
		// A deep clone owns all its files, also those of a shallow source's source.
		delete(md.Configuration, ShallowSourceProperty)
	}
	stats := c.snapshotStats()
	dlog := txlog.NewLog(dl.Bucket, dl.Commits, &txlog.LogOptions{EngineInfo: table.EngineInfo, DisableAutoCheckpoint: true})
	txn := dlog.NewTransaction(nil, &txlog.TxnOptions{
		Operation: "CLONE",
		OperationParameters: map[string]any{
			"source": st.URI(), "sourceVersion": snap.Version(), "isShallow": o.Shallow,
		},
		OperationMetrics: map[string]any{
			"sourceTableSize": bytes, "sourceNumOfFiles": int64(len(files)),
			"numCopiedFiles": stats.FilesCopied + stats.FilesSkipped, "copiedFilesSize": stats.BytesCopied + stats.BytesSkipped,
			"numRemovedFiles": int64(0), "removedFilesSize": int64(0),
		},
	})
	txn.SetProtocol(p)
	txn.SetMetadata(md)
	txn.AddActions(adds...)
	if _, err := txn.Commit(ctx); err != nil {
		if errors.Is(err, txlog.ErrConflict) || errors.Is(err, txlog.ErrVersionExists) {
			return nil, fmt.Errorf("clone %s to %s: %w: another writer created a table there while the files were copied", src, dst, ErrNotEmpty)
		}
		return nil, fmt.Errorf("clone %s to %s: %w", src, dst, err)
	}
	return &CloneResult{SourceVersion: snap.Version(), TableID: md.ID, Files: len(files), Bytes: bytes, MadeRelative: madeRelative, Stats: stats}, nil
}

// checkCloneTarget refuses a destination that holds anything but files this clone would write
// itself (those are what a failed earlier attempt of the same clone left; a retry reuses them).
// It returns those files with their sizes.
func checkCloneTarget(ctx context.Context, dl *storage.Location, allowed map[string]bool) (map[string]int64, error) {
	present := map[string]int64{}
	it := dl.Bucket.List(nil)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return present, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dl.URI, err)
		}
		if strings.HasPrefix(obj.Key, txlog.LogDir) {
			return nil, fmt.Errorf("%w: %s already holds a Delta log (%s); clone into a new, empty location, or use `lake sync` to keep a replica", ErrNotEmpty, dl.URI, obj.Key)
		}
		if !allowed[obj.Key] {
			return nil, fmt.Errorf("%w: %s holds %s; clone into a new, empty location", ErrNotEmpty, dl.URI, obj.Key)
		}
		present[obj.Key] = obj.Size
	}
}

// absoluteURI turns a relative log path of table t into an absolute URI of the same file.
func absoluteURI(t *table.Table, p string) (string, error) {
	if isAbsolute(p) {
		return p, nil
	}
	k, err := relKey(p)
	if err != nil {
		return "", err
	}
	if dir := t.LocalDir(); dir != "" {
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(dir, filepath.FromSlash(k)))}).String(), nil
	}
	base, _, _ := strings.Cut(t.URI(), "?")
	return strings.TrimSuffix(base, "/") + "/" + (&url.URL{Path: k}).EscapedPath(), nil
}
