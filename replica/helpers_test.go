package replica_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/lakehouse/lake/internal/testutil/daytable"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// The shared test table (see internal/testutil/daytable).
var (
	createTable = daytable.Create
	appendRows  = daytable.Append
	rows        = daytable.Rows
	snapRows    = daytable.SnapRows
	open        = daytable.Open
)

func commitBytes(t testing.TB, tbl *table.Table, v int64) []byte {
	t.Helper()
	d, err := tbl.Bucket().ReadAll(context.Background(), txlog.CommitKey(v))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// writeFile writes data at key under a local directory.
func writeFile(dir, key string, data []byte) error {
	p := filepath.Join(dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		return err
	}
	return os.WriteFile(p, data, 0o644)
}
