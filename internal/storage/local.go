package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/uuid"
)

// Local writes go to a temporary file in the directory tmpDir at the table root, then appear under
// their final name at once. Keeping them out of the final file's directory matters: fileblob's
// listing fails when a file vanishes between reading a directory and stat-ing its entries, so
// temporary files in _delta_log/ would make listings of the log fail while another writer
// commits. Listings with a prefix that contains "/" or does not start with "." never walk
// tmpDir; the Bucket leaves it out of the others. Spark, delta-rs and DuckDB ignore hidden
// directories.
const tmpDir = ".lake-tmp"

// isTempKey reports whether key lies in tmpDir.
func isTempKey(key string) bool {
	return key == tmpDir || strings.HasPrefix(key, tmpDir+"/")
}

// localFS writes objects into a local directory: every write goes to a temporary file, is
// fsynced, and then appears at once under its final name (rename to replace, hard link to create
// only if absent), followed by an fsync of the final directory.
type localFS struct {
	dir string // absolute

	// hookWrite, when set (tests only), replaces the copy of the data into the temporary file.
	hookWrite func(f *os.File, r io.Reader) error
}

// path returns the file for key. It accepts only keys that fileblob maps to the same file
// (fileblob escapes some characters and sequences instead), so writes and reads agree.
func (l *localFS) path(key string) (string, error) {
	switch {
	case !fs.ValidPath(key) || key == ".":
		return "", keyError(key, "is not a clean relative path")
	case strings.Contains(key, "../") || strings.HasSuffix(key, ".."):
		return "", keyError(key, `has an element ending in ".."`)
	case strings.HasSuffix(key, ".attrs"):
		return "", keyError(key, `ends in ".attrs", which fileblob reserves`)
	case isTempKey(key):
		return "", keyError(key, "is in "+tmpDir+"/, which holds the temporary files of writes")
	}
	for _, c := range key {
		if c < 0x20 || (os.PathSeparator == '\\' && strings.ContainsRune(`\<>:"|?*`, c)) {
			return "", keyError(key, "has a character the local filesystem cannot hold")
		}
	}
	return filepath.Join(l.dir, filepath.FromSlash(key)), nil
}

// put writes the content of r at key. With exclusive it creates the file only if absent and
// returns an error wrapping errExists otherwise. If ctx ends or r fails, nothing appears at key.
func (l *localFS) put(ctx context.Context, key string, r io.Reader, exclusive bool) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	final, err := l.path(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(final)
	if err := l.mkdirAll(dir); err != nil {
		return err
	}
	f, err := l.createTemp(filepath.Base(final))
	if err != nil {
		return err
	}
	tmp := f.Name()
	// The temporary file never outlives put: on success it was renamed or linked.
	defer func() {
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = rerr
		}
	}()
	if err := l.write(ctx, f, r); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Last chance to abort: after this the object is visible.
	if err := ctx.Err(); err != nil {
		return err
	}
	if exclusive {
		// link(2) fails with EEXIST if final exists: the atomic create-if-absent that
		// rename(2) cannot give.
		if err := os.Link(tmp, final); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s: %w", final, errExists)
			}
			return err
		}
	} else if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(dir)
}

// createTemp creates a new temporary file for a write of a file named base.
func (l *localFS) createTemp(base string) (*os.File, error) {
	name := filepath.Join(l.dir, tmpDir, base+"."+uuid.NewString()+".tmp")
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(filepath.Join(l.dir, tmpDir), 0o777); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	}
	return f, err
}

func (l *localFS) write(ctx context.Context, f *os.File, r io.Reader) error {
	if l.hookWrite != nil {
		return l.hookWrite(f, r)
	}
	_, err := io.Copy(f, &ctxReader{ctx: ctx, r: r})
	return err
}

// mkdirAll creates dir and its missing parents below l.dir, fsyncing each parent that gained an
// entry so that a later file in dir survives a crash.
func (l *localFS) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if dir == l.dir || !strings.HasPrefix(dir, l.dir) {
		return os.MkdirAll(dir, 0o777)
	}
	parent := filepath.Dir(dir)
	if err := l.mkdirAll(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o777); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // created concurrently
		}
		return err
	}
	return syncDir(parent)
}

// syncDir fsyncs a directory, making the entries created in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some filesystems and platforms cannot fsync a directory; the entry is then as durable
	// as the platform makes it.
	if errors.Is(err, errors.ErrUnsupported) || errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}

// ctxReader stops reading when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
