// Package source turns records from outside sources (CSV, TSV, JSON arrays, NDJSON, collector
// events) into Arrow batches of a table's schema, and the records that cannot be turned into rows
// into quarantine rows that say why.
//
// For a table with the standard interaction schema (table.InteractionSchema) a Standardizer
// applies the interaction rules of shared/CONTRACT.md: a Mapping picks each standard column out
// of the source's own fields (by name, by dotted path into nested JSON, or as a constant),
// renames interaction types, parses timestamps in the format the caller names (a bare number is
// never guessed), derives event_date from the timestamp, derives event_id from a hash of the
// standardised fields when the source has none, keeps the fields it did not map in properties,
// and drops duplicate event_ids. For any other table it converts each field to its column's type
// by name. Either way a record that does not fit (a missing required field, a value that does
// not parse or is out of range, invalid UTF-8, the wrong number of CSV columns) becomes a
// quarantine row (QuarantineSchema) with the raw record, its position and the reason; nothing is
// dropped silently, and Counts always add up: Read = Written + Quarantined + Duplicate.
//
// A Sink commits a Batch to the table and its quarantine table so that a crash between the two
// commits loses and doubles nothing: both commits carry the same txn (appId, version), the
// quarantine table's first, and a retried batch skips whichever commit already landed.
//
// # Ownership
//
// A Batch's record batches belong to the caller, who calls Batch.Release once done with them.
// A Standardizer is used by one goroutine.
package source
