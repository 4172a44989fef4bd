// Package integration holds end-to-end tests that need more than the engine's own module: DuckDB
// (through duckdb-go, cgo) as an independent reader of what lake writes, and many `lake`
// processes writing one table on real stores. It is a separate module so the engine does not
// depend on DuckDB.
package integration
