package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"gocloud.dev/pubsub/mempubsub"
)

func TestModelsEndpoint(t *testing.T) {
	get := func(opts *Options, token string) (int, map[string]any) {
		t.Helper()
		topic := mempubsub.NewTopic()
		defer topic.Shutdown(context.Background())
		srv, err := New(topic, opts)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/v1/models", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("body %q: %v", rec.Body.String(), err)
		}
		return rec.Code, body
	}
	if code, body := get(nil, ""); code != http.StatusServiceUnavailable || body["error"] == nil {
		t.Fatalf("without a registry: %d %v", code, body)
	}
	models := func(context.Context) (any, error) {
		return map[string]any{"live": map[string]any{"als": map[string]any{"run_id": "r1"}}}, nil
	}
	if code, body := get(&Options{Models: models}, ""); code != 200 || body["live"] == nil {
		t.Fatalf("registry: %d %v", code, body)
	}
	if code, _ := get(&Options{Models: models, ReadToken: "tok"}, ""); code != http.StatusUnauthorized {
		t.Fatalf("without the read token: %d", code)
	}
	if code, _ := get(&Options{Models: models, ReadToken: "tok"}, "tok"); code != 200 {
		t.Fatalf("with the read token: %d", code)
	}
	failing := func(context.Context) (any, error) { return nil, errors.New("boom") }
	if code, body := get(&Options{Models: failing}, ""); code != 500 || body["error"] == nil {
		t.Fatalf("a failing registry: %d %v", code, body)
	}
}
