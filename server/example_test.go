package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"gocloud.dev/pubsub/mempubsub"

	"github.com/lakehouse/lake/server"
)

// A pixel hit becomes one queue message: the standard column names, an event_id given by the
// collector, source "collector".
func Example() {
	ctx := context.Background()
	topic := mempubsub.NewTopic()
	sub := mempubsub.NewSubscription(topic, time.Minute)
	defer topic.Shutdown(ctx)
	defer sub.Shutdown(ctx)
	srv, _ := server.New(topic, nil)

	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest("GET", "/p.gif?u=alice&i=sku-1&t=view&ts=1714557600000", nil))
	fmt.Println(w.Code, w.Header().Get("Content-Type"))

	m, _ := sub.Receive(ctx)
	m.Ack()
	fmt.Println(len(m.Body) > 0, m.Metadata[server.ReceivedKey] != "")
	// Output:
	// 200 image/gif
	// true true
}
