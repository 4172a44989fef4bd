package replica

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/lakehouse/lake/txlog"
)

// Options are what Clone and Sync share. The zero value is valid.
type Options struct {
	// Concurrency bounds the parallel file transfers (default 16).
	Concurrency int
	// OnCopy is called after each file is copied and verified (not for files skipped because the
	// destination already had them), with the path as the log records it and its size.
	OnCopy func(path string, size int64)
	// Progress is called after each file is copied or skipped, with the files and bytes done so
	// far and the totals of the current batch of copies.
	Progress func(p Progress)
}

// Progress is a snapshot of a copy's progress.
type Progress struct {
	Files, TotalFiles int64
	Bytes, TotalBytes int64 // bytes known in advance (the log's sizes)
}

// Stats count a run's transfers.
type Stats struct {
	FilesCopied  int64 // copied and verified
	BytesCopied  int64
	FilesSkipped int64 // already at the destination with the right size
	BytesSkipped int64
	// FilesChecksummed counts the copies whose MD5 was compared between two of: the source
	// store's, the bytes sent, the destination store's (the others were checked by size only:
	// neither store reports MD5s, as local directories do not).
	FilesChecksummed int64
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	return c
}

// fileRef is one file to copy: key in both buckets, the path as the log records it, the size the
// log records (-1: unknown, as for deletion-vector files) and the version that needs it.
type fileRef struct {
	key     string
	path    string
	size    int64
	version int64
}

// copier copies files between two table roots.
type copier struct {
	src, dst *blob.Bucket
	srcURI   string
	latest   int64 // the source's latest version, for MissingFileError
	opts     Options

	// dstMD5 says whether the destination reports MD5s: 0 unknown, 1 yes, 2 no. While it is not
	// "no", copies from a source without MD5s hash the bytes they send to compare.
	dstMD5 atomic.Int32

	stats struct {
		filesCopied, bytesCopied, filesSkipped, bytesSkipped, checksummed atomic.Int64
	}
	mu struct {
		sync.Mutex
		prog Progress
	}
}

// newCopier returns a copier from src to dst; dstLocal says dst is a local directory, which
// reports no MD5s (so copies need not hash what they send).
func newCopier(src, dst *blob.Bucket, dstLocal bool, srcURI string, latest int64, opts Options) *copier {
	c := &copier{src: src, dst: dst, srcURI: srcURI, latest: latest, opts: opts}
	if dstLocal {
		c.dstMD5.Store(2)
	}
	return c
}

func (c *copier) snapshotStats() Stats {
	return Stats{
		FilesCopied: c.stats.filesCopied.Load(), BytesCopied: c.stats.bytesCopied.Load(),
		FilesSkipped: c.stats.filesSkipped.Load(), BytesSkipped: c.stats.bytesSkipped.Load(),
		FilesChecksummed: c.stats.checksummed.Load(),
	}
}

// copyAll copies refs (deduplicated by key) with bounded parallelism; it returns when all are
// verified at the destination, or with the first error.
func (c *copier) copyAll(ctx context.Context, refs []fileRef) error {
	seen := make(map[string]bool, len(refs))
	uniq := refs[:0:0]
	var total int64
	for _, r := range refs {
		if seen[r.key] {
			continue
		}
		seen[r.key] = true
		uniq = append(uniq, r)
		total += max(r.size, 0)
	}
	c.mu.Lock()
	c.mu.prog = Progress{TotalFiles: int64(len(uniq)), TotalBytes: total}
	c.mu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.Concurrency)
	for _, r := range uniq {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return c.copyOne(gctx, r) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

func (c *copier) progress(size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.prog.Files++
	c.mu.prog.Bytes += size
	if c.opts.Progress != nil {
		c.opts.Progress(c.mu.prog)
	}
}

func (c *copier) missing(r fileRef, err error) error {
	return &MissingFileError{Src: c.srcURI, Path: r.path, Version: r.version, Latest: c.latest, Err: err}
}

// copyOne copies one file unless the destination has it with the right size, then verifies it.
func (c *copier) copyOne(ctx context.Context, r fileRef) error {
	want := r.size
	if da, err := c.dst.Attributes(ctx, r.key); err == nil {
		if want < 0 {
			sa, err := c.src.Attributes(ctx, r.key)
			if err != nil {
				if gcerrors.Code(err) == gcerrors.NotFound {
					return c.missing(r, err)
				}
				return fmt.Errorf("stat %s at the source: %w", r.path, err)
			}
			want = sa.Size
		}
		if da.Size == want {
			c.stats.filesSkipped.Add(1)
			c.stats.bytesSkipped.Add(da.Size)
			c.progress(da.Size)
			return nil
		}
		// A different size: an older, foreign or damaged copy; the copy below replaces it.
	} else if gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("stat %s at the destination: %w", r.path, err)
	}
	sa, err := c.src.Attributes(ctx, r.key)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return c.missing(r, err)
		}
		return fmt.Errorf("stat %s at the source: %w", r.path, err)
	}
	if r.size >= 0 && sa.Size != r.size {
		return fmt.Errorf("file %s at the source has %d bytes, its log records %d: the source table is damaged", r.path, sa.Size, r.size)
	}
	rd, err := c.src.NewReader(ctx, r.key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return c.missing(r, err)
		}
		return fmt.Errorf("read %s at the source: %w", r.path, err)
	}
	defer rd.Close()
	// Verification without a second read: where both stores report an MD5, the destination's
	// (computed by the store from what it received) must equal the source's. Only where one side
	// reports none are the bytes hashed on the way through, to compare with the side that does.
	var h hash.Hash
	var src io.Reader = rd
	if state := c.dstMD5.Load(); (len(sa.MD5) == 0) != (state == 2) {
		h = md5.New()
		src = io.TeeReader(rd, h)
	}
	ct := sa.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	err = c.dst.Upload(ctx, r.key, src, &blob.WriterOptions{ContentType: ct})
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound && ctx.Err() == nil {
			return c.missing(r, err) // vanished while being read
		}
		return fmt.Errorf("copy %s: %w", r.path, err)
	}
	da, err := c.dst.Attributes(ctx, r.key)
	if err != nil {
		return fmt.Errorf("verify %s at the destination: %w", r.path, err)
	}
	if len(da.MD5) > 0 {
		c.dstMD5.Store(1)
	} else {
		c.dstMD5.CompareAndSwap(0, 2)
	}
	var verr *VerifyError
	compared := false
	if da.Size != sa.Size {
		verr = &VerifyError{Path: r.path, What: "size", Src: strconv.FormatInt(sa.Size, 10), Dst: strconv.FormatInt(da.Size, 10)}
	} else {
		var sent []byte
		if h != nil {
			sent = h.Sum(nil)
		}
		// Every MD5 known (the source's, the bytes sent, the destination's) must agree.
		sums := [][]byte{sa.MD5, sent, da.MD5}
		var ref []byte
		for _, m := range sums {
			if len(m) == 0 {
				continue
			}
			if ref == nil {
				ref = m
				continue
			}
			compared = true
			if !bytes.Equal(ref, m) {
				verr = &VerifyError{Path: r.path, What: "MD5", Src: hex.EncodeToString(ref), Dst: hex.EncodeToString(m)}
				break
			}
		}
	}
	if verr != nil {
		_ = c.dst.Delete(ctx, r.key)
		return verr
	}
	if compared {
		c.stats.checksummed.Add(1)
	}
	c.stats.filesCopied.Add(1)
	c.stats.bytesCopied.Add(da.Size)
	if c.opts.OnCopy != nil {
		c.opts.OnCopy(r.path, da.Size)
	}
	c.progress(da.Size)
	return nil
}

// isAbsolute reports whether a log path is an absolute URI rather than a path relative to the
// table root.
func isAbsolute(p string) bool {
	return strings.Contains(p, "://") || strings.HasPrefix(p, "file:/")
}

// relKey is the bucket key of a relative log path: URL-decoded once and cleaned.
func relKey(p string) (string, error) {
	k, err := url.PathUnescape(p)
	if err != nil {
		return "", fmt.Errorf("path %q is not a valid URL-encoded path: %w", p, err)
	}
	c := path.Clean(k)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") || strings.HasPrefix(c, "/") {
		return "", fmt.Errorf("path %q does not name a file inside the table", p)
	}
	return c, nil
}

// filesOf returns the files an action needs at the destination for it to be readable there:
// relative data, deletion-vector and change-data files. Files named by absolute URI are not
// part of the table's root and are not copied; abs lists them.
func filesOf(a *txlog.Action, version int64) (refs []fileRef, abs []string, err error) {
	addRel := func(p string, size int64) error {
		if isAbsolute(p) {
			abs = append(abs, p)
			return nil
		}
		k, err := relKey(p)
		if err != nil {
			return err
		}
		refs = append(refs, fileRef{key: k, path: p, size: size, version: version})
		return nil
	}
	switch {
	case a.Add != nil:
		if err := addRel(a.Add.Path, a.Add.Size); err != nil {
			return nil, nil, err
		}
		if dv := a.Add.DeletionVector; dv != nil {
			switch dv.StorageType {
			case "u":
				k, err := dvKey(dv.PathOrInlineDv)
				if err != nil {
					return nil, nil, err
				}
				refs = append(refs, fileRef{key: k, path: k, size: -1, version: version})
			case "p":
				abs = append(abs, dv.PathOrInlineDv)
			}
		}
	case a.CDC != nil:
		if err := addRel(a.CDC.Path, a.CDC.Size); err != nil {
			return nil, nil, err
		}
	}
	return refs, abs, nil
}

const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// dvKey is the key of a relative ('u') deletion vector's file: an optional prefix, then a
// Z85-encoded UUID (protocol "Deletion Vector Descriptor").
func dvKey(p string) (string, error) {
	if len(p) < 20 {
		return "", fmt.Errorf("deletion vector %q: a relative path needs a 20-character encoded UUID", p)
	}
	prefix, enc := p[:len(p)-20], p[len(p)-20:]
	raw := make([]byte, 0, 16)
	for i := 0; i < len(enc); i += 5 {
		var v uint64
		for j := 0; j < 5; j++ {
			d := strings.IndexByte(z85Alphabet, enc[i+j])
			if d < 0 {
				return "", fmt.Errorf("deletion vector %q: invalid Z85 character %q", p, enc[i+j])
			}
			v = v*85 + uint64(d)
		}
		if v > 0xFFFFFFFF {
			return "", fmt.Errorf("deletion vector %q: Z85 block overflows", p)
		}
		raw = binary.BigEndian.AppendUint32(raw, uint32(v))
	}
	id, err := uuid.FromBytes(raw)
	if err != nil {
		return "", fmt.Errorf("deletion vector %q: %w", p, err)
	}
	name := "deletion_vector_" + id.String() + ".bin"
	if prefix != "" {
		name = prefix + "/" + name
	}
	return name, nil
}
