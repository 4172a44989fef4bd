package reader

import (
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// ObjectKey returns the key in t's bucket of a data file path as add and remove actions store
// it: a URL-encoded path relative to the table root, or an absolute URI inside the table's
// location. A path outside the table's location (a shallow clone's files, another store) is an
// *UnsupportedError; maintenance that deletes files (vacuum) skips such paths, since they are
// not the table's to delete.
func ObjectKey(t *table.Table, path string) (string, error) {
	r := resolver{bucket: t.Bucket(), uri: t.URI(), localDir: t.LocalDir()}
	return r.key(path)
}

// DeletionVectorKey returns the key in t's bucket of the file holding dv, and "" for an inline
// vector (storage type "i"), which has no file. Errors are as ObjectKey's.
func DeletionVectorKey(t *table.Table, dv *txlog.DeletionVector) (string, error) {
	if dv == nil || dv.StorageType == "i" {
		return "", nil
	}
	p, absolute, err := dvPath(dv)
	if err != nil || !absolute {
		return p, err
	}
	return ObjectKey(t, p)
}
