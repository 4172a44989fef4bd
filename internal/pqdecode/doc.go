// Package pqdecode is a fast path that decodes one flat Parquet column chunk
// (one leaf column of one row group) straight into Arrow buffers, bypassing
// pqarrow's per-value builders and the []parquet.ByteArray slices that make
// pqarrow's string path allocation- and GC-heavy.
//
// What it supports (Supported reports it from metadata alone; for anything
// else the caller keeps using pqarrow):
//
//   - top-level leaves only: max repetition level 0 and max definition level
//     0 (required) or 1 (optional);
//   - BYTE_ARRAY (no logical type or String) -> arrow.STRING / arrow.BINARY;
//     INT32 (none, Int(32,signed)) -> INT32, INT32 (Date) -> DATE32;
//     INT64 (none, Int(64,signed)) -> INT64, INT64 (Timestamp with the same
//     unit) -> TIMESTAMP (the Arrow time zone is left as the caller gave it);
//     FLOAT -> FLOAT32; DOUBLE -> FLOAT64; BOOLEAN -> BOOL;
//   - encodings PLAIN, PLAIN_DICTIONARY / RLE_DICTIONARY (including chunks
//     that fall back from dictionary to plain mid-chunk), RLE (levels, and
//     booleans) and the legacy BIT_PACKED level encoding (decoded MSB-first as
//     the format spec says; arrow-go's own level decoder reads it LSB-first,
//     no current writer produces it);
//   - data pages V1 and V2 with any codec arrow-go's page reader supports;
//   - unencrypted files only.
//
// arrow-go's page reader can "stream" large PLAIN byte-array pages when the
// file was opened with parquet.ReaderProperties.PageStreamingEnabled; the
// values of such pages are not reachable through the public Page API, so
// ReadColumn returns an error wrapping ErrStreamingPage and the caller should
// fall back to pqarrow (or open the file without page streaming, the
// default).
//
// Ownership: ReadColumn allocates every buffer of the returned array with the
// allocator it is given; the array is owned by the caller, who must Release
// it exactly once. Nothing returned aliases the page reader's buffers, so the
// array stays valid after the file is closed. ReadColumn never panics on
// corrupt input: problems (corrupt pages, value count mismatches, indices out
// of the dictionary, offsets beyond 2 GiB) come back as errors, and all
// partially built buffers are released.
package pqdecode
