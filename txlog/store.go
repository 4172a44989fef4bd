package txlog

import (
	"context"
)

// CommitStore is the one storage primitive that differs between kinds of store: creating a file
// only if no file exists at its key. Everything else the log does (get, list) goes through a
// *blob.Bucket.
//
// PutIfAbsent writes data at key (relative to the table root, e.g.
// "_delta_log/00000000000000000003.json") atomically: readers see either no object or all of data,
// never a part.
//   - It returns nil when this call created the object.
//   - It returns an error wrapping ErrVersionExists when an object already existed; nothing was
//     written.
//   - Any other error means the outcome is unknown: the object may or may not have been written
//     by this call (a network error, S3's 409 for a racing conditional put). The log settles it by
//     reading the object back.
type CommitStore interface {
	PutIfAbsent(ctx context.Context, key string, data []byte) error
}
