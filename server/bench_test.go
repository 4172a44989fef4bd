package server

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gocloud.dev/pubsub/mempubsub"
)

// BenchmarkPixel is the collector's per-event cost without the network: parse, validate, give an
// id, marshal, queue on mem://, answer (a consumer drains the queue alongside).
func BenchmarkPixel(b *testing.B) {
	topic := mempubsub.NewTopic()
	sub := mempubsub.NewSubscription(topic, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			m, err := sub.Receive(ctx)
			if err != nil {
				return
			}
			m.Ack()
		}
	}()
	srv, err := New(topic, &Options{RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, httptest.NewRequest("GET", "/p.gif?u=user-1&i=item-2&t=view&ts=1700000000000", nil))
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
}

// BenchmarkPost100 is the cost of a POST of 100 NDJSON events.
func BenchmarkPost100(b *testing.B) {
	topic := mempubsub.NewTopic()
	sub := mempubsub.NewSubscription(topic, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			m, err := sub.Receive(ctx)
			if err != nil {
				return
			}
			m.Ack()
		}
	}()
	srv, err := New(topic, &Options{RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	body := strings.Repeat(`{"user_id":"u1","item_id":"i1","interaction_type":"view","timestamp":1700000000000}`+"\n", 100)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest("POST", "/v1/events", strings.NewReader(body)))
		if w.Code != 202 {
			b.Fatal(w.Code)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}
