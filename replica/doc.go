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
// destination reports must equal the source's (and the log's, where it records one), and every
// checksum known on two of three sides (the source store's, the bytes sent, the destination
// store's) must agree: MD5 (memblob, GCS, Azure, S3 single-part uploads), CRC32C (GCS on every
// object; S3 for objects uploaded with it) and CRC32 (S3 objects uploaded by the AWS SDK's
// default). Stores compute their checksums from what they received, so where both sides
// report one nothing is hashed; where one side does, the bytes are hashed on the way through
// (CRC32C and CRC32 in hardware, MD5 only then). Stats count the copies each checksum checked.
// A file already present at the destination with the right size is not copied again, which
// makes Sync resumable after a crash at any point and Clone cheap to retry.
//
// A deep clone of a table whose files are named by absolute URI (a shallow clone) copies them
// into the clone's root and names them by relative path.
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
