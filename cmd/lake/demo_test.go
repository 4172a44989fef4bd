package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// `lake demo --serve` runs the demo, then serves its tables: the read APIs answer from the
// demo's outputs, the dashboard is at /, and the collector takes events into the demo's table.
func TestDemoServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errLog := newAddrWatch()
	var out bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: &out, stderr: errLog}, []string{"demo", dir, "--interactions", "20000", "--serve", "--addr", "127.0.0.1:0"})
	}()
	var addr string
	select {
	case addr = <-errLog.addr:
	case code := <-done:
		t.Fatalf("demo --serve exited %d before serving: %s", code, errLog.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("demo --serve did not start serving: %s", errLog.String())
	}
	get := func(path string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	// The outputs load before the server listens.
	code, body, h := get("/v1/users/u17/recommendations?k=5")
	if code != 200 || h.Get("Lake-Version") == "" {
		t.Fatalf("recommendations: %d %s", code, body)
	}
	var recs struct {
		Source string `json:"source"`
		Items  []struct {
			ItemID string `json:"item_id"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(body), &recs); err != nil || len(recs.Items) != 5 || recs.Source != "model" {
		t.Fatalf("recommendations for a user the model knows: %v %s", err, body)
	}
	if code, body, _ = get("/v1/items/" + recs.Items[0].ItemID + "/similar?k=3"); code != 200 || !strings.Contains(body, `"items":[{`) {
		t.Fatalf("similar items: %d %s", code, body)
	}
	if code, body, _ = get("/v1/models"); code != 200 || !strings.Contains(body, `"live"`) {
		t.Fatalf("models: %d %s", code, body)
	}
	if code, body, _ = get("/"); code != 200 || !strings.Contains(strings.ToLower(body), "<html") {
		t.Fatalf("dashboard: %d %.200s", code, body)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("demo --serve exited %d after Ctrl-C: %s", code, errLog.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("demo --serve did not stop")
	}
	if !strings.Contains(out.String(), "Serving the demo") {
		t.Fatalf("demo output: %s", out.String())
	}
}

// addrWatch is the stderr of an in-process `lake serve`: it keeps what was written and sends
// the address once the server says where it listens.
type addrWatch struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	sent bool
	addr chan string
}

func newAddrWatch() *addrWatch { return &addrWatch{addr: make(chan string, 1)} }

func (a *addrWatch) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.buf.Write(p)
	if !a.sent {
		const marker = "listening on http://"
		s := a.buf.String()
		if i := strings.Index(s, marker); i >= 0 {
			rest := s[i+len(marker):]
			if j := strings.IndexAny(rest, " \n"); j > 0 {
				a.addr <- rest[:j]
				a.sent = true
			}
		}
	}
	return len(p), nil
}

func (a *addrWatch) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.buf.String()
}
