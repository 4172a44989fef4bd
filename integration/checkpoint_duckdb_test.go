package integration

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

func openDuck(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// Everything the tests use is built in: never reach out for an extension (the network here
	// has only the package registries).
	db.SetMaxOpenConns(1)
	for _, q := range []string{"SET autoinstall_known_extensions = false", "SET autoload_known_extensions = false"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// A checkpoint lake writes is read by DuckDB's own Parquet reader, with the protocol's column
// names and types, and the same actions our reader finds.
func TestCheckpointReadByDuckDB(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "events")
	tbl, err := table.Create(ctx, dir, table.InteractionSchema(), &table.CreateOptions{
		PartitionColumns: []string{"event_date"},
		Options:          table.Options{Log: txlog.LogOptions{DisableAutoCheckpoint: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	const n = 25
	for i := range n {
		snap, err := tbl.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		day := fmt.Sprintf("2024-01-%02d", i%5+1)
		txn := tbl.Log().NewTransaction(snap, nil)
		txn.AddActions(txlog.Action{Add: &txlog.Add{
			Path:            fmt.Sprintf("event_date=%s/part-%05d.parquet", day, i),
			PartitionValues: map[string]*string{"event_date": &day},
			Size:            int64(1000 + i), ModificationTime: 1700000000000, DataChange: true,
			Stats: fmt.Sprintf(`{"numRecords":%d,"minValues":{"user_id":"u1"},"maxValues":{"user_id":"u9"},"nullCount":{"user_id":0}}`, i+1),
		}})
		txn.SetAppTransaction("duck-test", int64(i))
		if _, err := txn.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tbl.Log().Checkpoint(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, res.Path)
	db := openDuck(t)

	cols := map[string]string{}
	rows, err := db.Query(fmt.Sprintf("DESCRIBE SELECT * FROM read_parquet('%s')", path))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, typ string
		var null, key, def, extra sql.NullString
		if err := rows.Scan(&name, &typ, &null, &key, &def, &extra); err != nil {
			t.Fatal(err)
		}
		// DuckDB quotes struct field names that are SQL keywords ("version"); compare unquoted.
		cols[name] = strings.ReplaceAll(typ, `"`, "")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	for _, c := range []string{"txn", "add", "remove", "metaData", "protocol"} {
		if _, ok := cols[c]; !ok {
			t.Fatalf("checkpoint lacks column %q; has %v", c, cols)
		}
	}
	for _, want := range []string{"path VARCHAR", "partitionValues MAP(VARCHAR, VARCHAR)", "size BIGINT",
		"modificationTime BIGINT", "dataChange BOOLEAN", "stats VARCHAR"} {
		if !strings.Contains(cols["add"], want) {
			t.Errorf("add column type %s lacks %q", cols["add"], want)
		}
	}
	for _, want := range []string{"minReaderVersion INTEGER", "minWriterVersion INTEGER"} {
		if !strings.Contains(cols["protocol"], want) {
			t.Errorf("protocol column type %s lacks %q", cols["protocol"], want)
		}
	}
	if !strings.Contains(cols["txn"], "appId VARCHAR") || !strings.Contains(cols["txn"], "version BIGINT") {
		t.Errorf("txn column type %s", cols["txn"])
	}

	var adds, records int64
	if err := db.QueryRow(fmt.Sprintf(`SELECT count(*), sum(CAST(json_extract(add.stats, '$.numRecords') AS BIGINT))
		FROM read_parquet('%s') WHERE add IS NOT NULL`, path)).Scan(&adds, &records); err != nil {
		t.Fatal(err)
	}
	if adds != n || records != n*(n+1)/2 {
		t.Fatalf("duckdb sees %d adds with %d records, want %d and %d", adds, records, n, n*(n+1)/2)
	}
	var day string
	if err := db.QueryRow(fmt.Sprintf(`SELECT add.partitionValues['event_date'] FROM read_parquet('%s')
		WHERE add.path = 'event_date=2024-01-03/part-00002.parquet'`, path)).Scan(&day); err != nil {
		t.Fatal(err)
	}
	if day != "2024-01-03" {
		t.Fatalf("partition value %q", day)
	}
	var reader, writer int
	if err := db.QueryRow(fmt.Sprintf(`SELECT protocol.minReaderVersion, protocol.minWriterVersion FROM read_parquet('%s') WHERE protocol IS NOT NULL`, path)).Scan(&reader, &writer); err != nil {
		t.Fatal(err)
	}
	if reader != 1 || writer != 2 {
		t.Fatalf("protocol (%d,%d)", reader, writer)
	}
	var appVersion int64
	if err := db.QueryRow(fmt.Sprintf(`SELECT txn.version FROM read_parquet('%s') WHERE txn.appId = 'duck-test'`, path)).Scan(&appVersion); err != nil {
		t.Fatal(err)
	}
	if appVersion != n-1 {
		t.Fatalf("txn version %d", appVersion)
	}
	var schemaString string
	if err := db.QueryRow(fmt.Sprintf(`SELECT metaData.schemaString FROM read_parquet('%s') WHERE metaData IS NOT NULL`, path)).Scan(&schemaString); err != nil {
		t.Fatal(err)
	}
	if _, err := txlog.ParseSchema(schemaString); err != nil {
		t.Fatal(err)
	}

	// Our own reader, from the checkpoint alone, agrees.
	tbl2, err := table.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl2.Close()
	again, err := tbl2.Snapshot(ctx)
	if err != nil || again.NumFiles() != n || again.Version() != snap.Version() {
		t.Fatalf("reload: %v", err)
	}
}
