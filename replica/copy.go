package replica

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
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
	// FilesChecksummed counts the copies that had at least one checksum compared between two
	// of: the source store's, the bytes sent, the destination store's (the others were checked
	// by size only: neither store reports a checksum, as local directories do not).
	FilesChecksummed int64
	// FilesMD5, FilesCRC32C and FilesCRC32 count the copies that had that checksum compared
	// (MD5: memblob, GCS, Azure, S3 single-part uploads; CRC32C: GCS, and S3 objects uploaded
	// with it; CRC32: S3 objects the AWS SDK uploaded with its default checksum).
	FilesMD5, FilesCRC32C, FilesCRC32 int64
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
// log records (-1: unknown, as for deletion-vector files) and the version that needs it. A file
// from elsewhere than the copier's source (a deep clone of a shallow clone reads the files of
// the clone's source) names its bucket in from and its key there in srcKey.
type fileRef struct {
	key     string
	path    string
	size    int64
	version int64

	from    *blob.Bucket // nil: the copier's source
	fromURI string       // from's location, for MissingFileError
	srcKey  string       // "": key
}

// source returns the bucket and key to read r from.
func (c *copier) source(r fileRef) (*blob.Bucket, string) {
	b, k := c.src, r.key
	if r.from != nil {
		b = r.from
	}
	if r.srcKey != "" {
		k = r.srcKey
	}
	return b, k
}

// copier copies files between two table roots.
type copier struct {
	src, dst *blob.Bucket
	srcURI   string
	latest   int64 // the source's latest version, for MissingFileError
	opts     Options
	// present, when not nil, is what the destination held when the copy started (Clone lists
	// it): key to size. copyOne then makes no HEAD to see whether a file is there.
	present map[string]int64

	// dstMD5 and dstCRC32C say whether the destination reports MD5s and CRC32Cs: 0 unknown,
	// 1 yes, 2 no (see noteReports). While dstMD5 is not "no", copies from a source without MD5s
	// hash the bytes they send to compare; likewise for CRC32C.
	dstMD5, dstCRC32C atomic.Int32

	stats struct {
		filesCopied, bytesCopied, filesSkipped, bytesSkipped, checksummed atomic.Int64
		sums                                                              [numSums]atomic.Int64
	}
	mu struct {
		sync.Mutex
		prog Progress
	}
}

// newCopier returns a copier from src to dst; dstLocal says dst is a local directory, which
// reports no checksums (so copies hash what they send only to compare with the source's).
func newCopier(src, dst *blob.Bucket, dstLocal bool, srcURI string, latest int64, opts Options) *copier {
	c := &copier{src: src, dst: dst, srcURI: srcURI, latest: latest, opts: opts}
	if dstLocal {
		c.dstMD5.Store(2)
		c.dstCRC32C.Store(2)
	}
	return c
}

func (c *copier) snapshotStats() Stats {
	return Stats{
		FilesCopied: c.stats.filesCopied.Load(), BytesCopied: c.stats.bytesCopied.Load(),
		FilesSkipped: c.stats.filesSkipped.Load(), BytesSkipped: c.stats.bytesSkipped.Load(),
		FilesChecksummed: c.stats.checksummed.Load(),
		FilesMD5:         c.stats.sums[sumMD5].Load(), FilesCRC32C: c.stats.sums[sumCRC32C].Load(), FilesCRC32: c.stats.sums[sumCRC32].Load(),
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

// dstSize says whether key is at the destination, and its size: from Clone's listing when
// there is one, else with a HEAD.
func (c *copier) dstSize(ctx context.Context, key string) (size int64, exists bool, err error) {
	if c.present != nil {
		size, exists = c.present[key]
		return size, exists, nil
	}
	da, err := c.dst.Attributes(ctx, key)
	if err == nil {
		return da.Size, true, nil
	}
	if gcerrors.Code(err) == gcerrors.NotFound {
		return 0, false, nil
	}
	return 0, false, err
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
	src := c.srcURI
	if r.fromURI != "" {
		src = r.fromURI
	}
	return &MissingFileError{Src: src, Path: r.path, Version: r.version, Latest: c.latest, Err: err}
}

// copyOne copies one file unless the destination has it with the right size, then verifies it.
//
// Requests are what a copy of many small files waits on (each is a round trip, 10-100 ms to an
// object store under load, as long as moving a few MiB), so a copy makes as few as it can, one
// after the other: the destination's existence check comes from Clone's listing where there is
// one (else a HEAD); the source is read with one GET, whose answer carries its size and, on S3
// and GCS, its checksums (a source HEAD is made only for other stores, for their MD5); after
// the upload, one HEAD of the destination reads what it stored. A deep clone from S3 to GCS
// makes 3 requests a file, a plain copy 2.
func (c *copier) copyOne(ctx context.Context, r fileRef) error {
	srcB, srcKey := c.source(r)
	want := r.size
	dsize, exists, err := c.dstSize(ctx, r.key)
	if err != nil {
		return fmt.Errorf("stat %s at the destination: %w", r.path, err)
	}
	if exists {
		if want < 0 {
			sa, err := srcB.Attributes(ctx, srcKey)
			if err != nil {
				if gcerrors.Code(err) == gcerrors.NotFound {
					return c.missing(r, err)
				}
				return fmt.Errorf("stat %s at the source: %w", r.path, err)
			}
			want = sa.Size
		}
		if dsize == want {
			c.stats.filesSkipped.Add(1)
			c.stats.bytesSkipped.Add(dsize)
			c.progress(dsize)
			return nil
		}
		// A different size: an older, foreign or damaged copy; the copy below replaces it.
	}
	// S3 reports an object's CRC32C or CRC32 only when asked, on a GET: ask on the GET we make.
	rd, err := srcB.NewReader(ctx, srcKey, &blob.ReaderOptions{BeforeRead: askS3Checksum})
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return c.missing(r, err)
		}
		return fmt.Errorf("read %s at the source: %w", r.path, err)
	}
	defer rd.Close()
	srcSize := rd.Size()
	if r.size >= 0 && srcSize != r.size {
		return fmt.Errorf("file %s at the source has %d bytes, its log records %d: the source table is damaged", r.path, srcSize, r.size)
	}
	srcSums, fromReader := readerSums(rd)
	ct := rd.ContentType()
	if !fromReader {
		// Memory, local directories, Azure: their MD5 (if any) is in the attributes only.
		sa, err := srcB.Attributes(ctx, srcKey)
		if err != nil {
			if gcerrors.Code(err) == gcerrors.NotFound {
				return c.missing(r, err)
			}
			return fmt.Errorf("stat %s at the source: %w", r.path, err)
		}
		if sa.Size != srcSize {
			return fmt.Errorf("file %s at the source changed while being read (%d bytes, then %d)", r.path, srcSize, sa.Size)
		}
		srcSums = attrSums(sa)
		if sa.ContentType != "" {
			ct = sa.ContentType
		}
	}
	// Verification without a second read: where both stores report a checksum, the destination's
	// (computed by the store from what it received) must equal the source's. Where only one side
	// reports it, the bytes are hashed on the way through to compare with that side. MD5 costs
	// about 1.5 ns a byte and is hashed only then; CRC32C and CRC32 run in hardware (under 0.1
	// ns a byte) and are hashed whenever one side may report them.
	var hs hashers
	var src io.Reader = rd
	if (len(srcSums[sumMD5]) == 0) != (c.dstMD5.Load() == 2) {
		hs[sumMD5] = md5.New()
	}
	if len(srcSums[sumCRC32C]) > 0 || c.dstCRC32C.Load() != 2 {
		hs[sumCRC32C] = crc32.New(castagnoli)
	}
	if len(srcSums[sumCRC32]) > 0 {
		hs[sumCRC32] = crc32.NewIEEE()
	}
	if w := hs.writer(); w != nil {
		src = io.TeeReader(rd, w)
	}
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
	dstSums := attrSums(da)
	noteReports(&c.dstMD5, len(dstSums[sumMD5]) > 0)
	noteReports(&c.dstCRC32C, len(dstSums[sumCRC32C]) > 0)
	var verr *VerifyError
	var compared [numSums]bool
	if da.Size != srcSize {
		verr = &VerifyError{Path: r.path, What: "size", Src: strconv.FormatInt(srcSize, 10), Dst: strconv.FormatInt(da.Size, 10)}
	} else {
		sent := hs.sums()
		// For each checksum, every value known (the source store's, the bytes sent, the
		// destination store's) must agree.
		for k := range numSums {
			var ref []byte
			for _, m := range [][]byte{srcSums[k], sent[k], dstSums[k]} {
				if len(m) == 0 {
					continue
				}
				if ref == nil {
					ref = m
					continue
				}
				compared[k] = true
				if !bytes.Equal(ref, m) {
					verr = &VerifyError{Path: r.path, What: sumNames[k], Src: hex.EncodeToString(ref), Dst: hex.EncodeToString(m)}
					break
				}
			}
			if verr != nil {
				break
			}
		}
	}
	if verr != nil {
		_ = c.dst.Delete(ctx, r.key)
		return verr
	}
	any := false
	for k, ok := range compared {
		if ok {
			any = true
			c.stats.sums[k].Add(1)
		}
	}
	if any {
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
