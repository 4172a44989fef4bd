package replica_test

import (
	"context"
	"fmt"

	"github.com/lakehouse/lake/replica"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// Keep a replica of a table in another store, version for version.
func ExampleSync() {
	ctx := context.Background()
	schema := &txlog.StructType{Fields: []txlog.StructField{{Name: "id", Type: txlog.Long}}}
	src, err := table.Create(ctx, "mem://example-replica/src", schema, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()

	res, err := replica.Sync(ctx, "mem://example-replica/src", "mem://example-replica/dst", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("synced versions %d..%d\n", res.From, res.To)
	res, _ = replica.Sync(ctx, "mem://example-replica/src", "mem://example-replica/dst", nil)
	fmt.Println("up to date:", res.From > res.To)
	// Output:
	// synced versions 0..0
	// up to date: true
}

// Clone the latest version of a table into a new table.
func ExampleClone() {
	ctx := context.Background()
	schema := &txlog.StructType{Fields: []txlog.StructField{{Name: "id", Type: txlog.Long}}}
	src, err := table.Create(ctx, "mem://example-clone/src", schema, &table.CreateOptions{Properties: map[string]string{"owner": "recs"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	if _, err := replica.Clone(ctx, "mem://example-clone/src", "mem://example-clone/dst", nil); err != nil {
		fmt.Println(err)
		return
	}
	dst, _ := table.Open(ctx, "mem://example-clone/dst", nil)
	defer dst.Close()
	h, _ := dst.History(ctx, 1)
	snap, _ := dst.Snapshot(ctx)
	fmt.Println(h[0].Version, h[0].CommitInfo.Operation, h[0].CommitInfo.OperationParameters["sourceVersion"], snap.Configuration()["owner"])
	_, err = replica.Clone(ctx, "mem://example-clone/src", "mem://example-clone/dst", nil)
	fmt.Println(err != nil)
	// Output:
	// 0 CLONE 0 recs
	// true
}
