package storage_test

import (
	"context"
	"errors"
	"fmt"

	"gocloud.dev/blob"

	"github.com/lakehouse/lake/internal/storage"
	"github.com/lakehouse/lake/txlog"
)

func ExampleOpen() {
	ctx := context.Background()
	loc, err := storage.Open(ctx, "mem://example/warehouse/events")
	if err != nil {
		panic(err)
	}
	defer loc.Close()

	const key = "_delta_log/00000000000000000000.json"
	err = loc.Commits.PutIfAbsent(ctx, key, []byte(`{"commitInfo":{}}`+"\n"))
	fmt.Println("first commit:", err)
	err = loc.Commits.PutIfAbsent(ctx, key, []byte(`{"commitInfo":{}}`+"\n"))
	fmt.Println("second commit conflicts:", errors.Is(err, txlog.ErrVersionExists))

	it := loc.Bucket.List(&blob.ListOptions{Prefix: "_delta_log/"})
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			break
		}
		fmt.Println(obj.Key, obj.Size)
	}
	fmt.Println(loc.URI)
	// Output:
	// first commit: <nil>
	// second commit conflicts: true
	// _delta_log/00000000000000000000.json 18
	// mem://example/warehouse/events
}
