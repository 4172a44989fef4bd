package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakehouse/lake/table"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Run on the embedded queue: events posted are committed, the row counter sees them, GET
// /v1/ops shows the maintenance schedule, and cancelling ctx stops everything cleanly.
func TestRunMem(t *testing.T) {
	ctx := context.Background()
	events := filepath.Join(t.TempDir(), "events")
	tbl, err := table.Create(ctx, events, table.InteractionSchema(), &table.CreateOptions{PartitionColumns: []string{table.InteractionPartitionColumn}})
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	cfg, err := Parse([]byte(fmt.Sprintf(`
table: %s
queue: mem://ops-run-test
committer: {batch_rows: 50, batch_interval: 50ms}
maintenance:
  optimize: {every: 1h}
  vacuum: {every: 1d}
`, events)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	var out lockedBuffer
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	started := make(chan *Scheduler, 1)
	go func() {
		done <- Run(runCtx, cfg, &RunOptions{Listener: ln, Stdout: &out, Started: func(_ net.Addr, s *Scheduler) { started <- s }})
	}()
	var sched *Scheduler
	select {
	case sched = <-started:
	case err := <-done:
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	var body bytes.Buffer
	for i := range 120 {
		fmt.Fprintf(&body, `{"user_id":"u%d","item_id":"i%d","interaction_type":"view","timestamp":"2026-01-02T03:04:05Z"}`+"\n", i%7, i%11)
	}
	resp, err := http.Post(base+"/v1/events", "application/x-ndjson", &body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	rc := newRowCounter(tbl)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, n, err := rc.latest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 120 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows committed, want 120\n%s", n, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err = http.Get(base + "/v1/ops")
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	err = json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if err != nil || len(rep.Tasks) != 2 || rep.Tasks[0].Name != TaskOptimize || rep.Tasks[1].Name != TaskVacuum || rep.Tasks[0].NextRun == nil {
		t.Errorf("/v1/ops: %+v %v", rep, err)
	}
	if len(sched.Status()) != 2 {
		t.Errorf("status: %+v", sched.Status())
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, want := range []string{"listening on http://", "scheduled optimize: every 1h", "scheduled vacuum: every 1d", "stopped; committed 120 events"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
