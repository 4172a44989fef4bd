package ops

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// The vacuum task visits the quarantine table beside the events table: it keeps raw records,
// user ids among them, so erasing a user must reach it. An orphaned file older than the
// retention is deleted from both.
func TestVacuumTaskVisitsQuarantine(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	events, quarantine := filepath.Join(dir, "events"), filepath.Join(dir, "events_quarantine")
	schema := &txlog.StructType{Fields: []txlog.StructField{{Name: "id", Type: txlog.String, Nullable: true}}}
	old := time.Now().Add(-30 * 24 * time.Hour)
	for _, uri := range []string{events, quarantine} {
		tb, err := table.Create(ctx, uri, schema, nil)
		if err != nil {
			t.Fatal(err)
		}
		tb.Close()
		orphan := filepath.Join(uri, "part-orphan.parquet") // a crashed writer's leftover
		if err := os.WriteFile(orphan, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(orphan, old, old)
	}
	no := false
	v := &vacuumTask{cfg: &VacuumConfig{Outputs: &no, LogCleanup: &no}, table: events, now: time.Now}
	res, err := v.run(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Summary, "2 tables: deleted 2 files") {
		t.Fatalf("vacuum: %q", res.Summary)
	}
	for _, uri := range []string{events, quarantine} {
		if _, err := os.Stat(filepath.Join(uri, "part-orphan.parquet")); !os.IsNotExist(err) {
			t.Errorf("%s: the orphaned file is still there (%v)", uri, err)
		}
	}
}
