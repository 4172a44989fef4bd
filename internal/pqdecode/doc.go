// Package pqdecode is a fast path that decodes one flat Parquet column chunk
// (one leaf column of one row group) straight into Arrow buffers, bypassing
// pqarrow's per-value builders and the []parquet.ByteArray slices that make
// pqarrow's string path allocation- and GC-heavy. ReadField extends it to
// top-level lists and maps of primitives (see below).
//
// What ReadColumn supports (Supported reports it from metadata alone; for
// anything else the caller keeps using pqarrow):
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
// Lists and maps: SupportedField and ReadField work on a top-level field (an
// index into the file's top-level schema fields, numbered as pqarrow's
// Manifest.Fields) instead of a leaf column. For a flat leaf they are
// Supported and ReadColumn; in addition they decode fields with exactly one
// repetition level whose values are leaves of the types above:
//
//   - LIST<primitive> in the standard 3-level layout
//     (<opt|req> group (LIST) { repeated group list { <opt|req> T element } }),
//     the legacy 2-level layout (<opt|req> group (LIST) { repeated T e }) and a
//     bare top-level "repeated T", into arrow.ListType;
//   - MAP<primitive, primitive> (<opt|req> group (MAP) { repeated group
//     key_value { required K key; <opt|req> V value } }) into arrow.MapType.
//
// dt must be the type pqarrow reads the field as (child names, nullability
// and metadata are taken from dt; an optional element or map value needs a
// nullable child field). Anything else (list<struct>, list<list>, maps with
// nested values, lists inside structs, large lists, the repeated group named
// "array" or "<name>_tuple" that pqarrow reads as a struct) is unsupported.
// The definition level thresholds (list/map present, element exists, element
// not null) are derived from the schema path; repetition and definition
// levels are read as RLE/bit-packed hybrid (or legacy BIT_PACKED) runs from
// V1 and V2 pages. The two columns of a map must describe the same entries
// (same rows, same entry counts, same null maps); ReadField checks that and
// fails otherwise. The child value buffers are sized for the column chunk's
// level count (num_values, an upper bound of the element count) and trimmed
// to the element count; pages may not hold more levels than num_values says.
//
// arrow-go's page reader can "stream" large PLAIN byte-array pages when the
// file was opened with parquet.ReaderProperties.PageStreamingEnabled; the
// values of such pages are not reachable through the public Page API, so
// ReadColumn returns an error wrapping ErrStreamingPage and the caller should
// fall back to pqarrow (or open the file without page streaming, the
// default).
//
// Ownership: ReadColumn (and ReadField) allocates every buffer of the returned array with the
// allocator it is given; the array is owned by the caller, who must Release
// it exactly once. Nothing returned aliases the page reader's buffers, so the
// array stays valid after the file is closed. ReadColumn never panics on
// corrupt input: problems (corrupt pages, value count mismatches, indices out
// of the dictionary, offsets beyond 2 GiB) come back as errors, and all
// partially built buffers are released.
package pqdecode
