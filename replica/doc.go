// Package replica copies Delta tables between stores: Clone makes a new table from one snapshot
// of another (deep: the data files are copied; shallow: the new log points at the source's files
// by absolute URI), and Sync keeps a version-for-version replica (the destination's version N
// holds the same actions as the source's version N, so version numbers, time travel by version
// and the model registry's versions mean the same on both sides).
//
// Any two stores internal/storage opens can be paired: a local directory, mem://, s3://, gs://,
// azblob://.
//
// # Copies and verification
//
// Data files (and deletion-vector and change-data files) are copied with bounded parallelism
// (Options.Concurrency) and verified before the commit that makes them visible: the size the
// destination reports must equal the source's (and the log's, where it records one); where the
// source store offers an MD5 (blob Attributes), the bytes are checked against it as they are
// written (gocloud's ContentMD5), and where the destination offers one it is compared too. A
// file already present at the destination with the right size is not copied again, which makes
// Sync resumable after a crash at any point and Clone cheap to retry.
//
// # Errors
//
// Clone refuses a destination that holds any object with an error matching ErrNotEmpty. Sync
// refuses a destination whose log differs from the source's (another writer committed there, or
// it is another table) with a *DivergedError matching ErrDiverged, and never overwrites a commit.
// A file the source no longer has (vacuumed while a sync ran, or before it) is a
// *MissingFileError naming it and the version to clone instead.
//
// # Concurrency
//
// Clone and Sync may run concurrently with writers of the source. Two Syncs into one destination
// are safe (a commit is written with put-if-absent and compared when it exists), but do the work
// twice. Options.OnCopy and Options.Progress are called from the copying goroutines, one call
// at a time.
package replica
