package stream_test

import (
	"context"
	"fmt"
	"time"

	"gocloud.dev/pubsub"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer/stream"
)

// Commit events from the embedded queue into a table.
func Example() {
	ctx := context.Background()
	tbl, err := table.Create(ctx, "mem://example-stream/events", table.InteractionSchema(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tbl.Close()
	q, err := stream.OpenQueue(ctx, "mem://example-events") // in-process, not durable
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close(ctx)
	sub, _ := q.Subscribe(ctx, 0)
	for i, typ := range []string{"view", "add_to_cart", "purchase"} {
		body := fmt.Sprintf(`{"event_id":"e%d","user_id":"u1","item_id":"sku-1","interaction_type":%q,"timestamp":"2024-05-01T10:00:0%dZ"}`, i, typ, i)
		q.Send(ctx, &pubsub.Message{Body: []byte(body)})
	}
	c, err := stream.New(ctx, tbl, sub, &stream.Options{
		Name: "example", BatchRows: 3, BatchInterval: time.Second,
		OnCommit: func(b stream.BatchResult) {
			fmt.Printf("batch %d: %d written, %d quarantined, table version %d\n", b.Sequence, b.Written, b.Quarantined, b.Version)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	rctx, stop := context.WithTimeout(ctx, 500*time.Millisecond)
	defer stop()
	if err := c.Run(rctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// batch 0: 3 written, 0 quarantined, table version 1
}
