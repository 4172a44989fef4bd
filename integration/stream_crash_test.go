package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"gocloud.dev/pubsub"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer/stream"
)

// crashEvents is the size of the crash test: LAKE_CRASH_EVENTS (the full size is
// 100000), default 20000 for CI.
func crashEvents(t testing.TB) int {
	if s := os.Getenv("LAKE_CRASH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("LAKE_CRASH_EVENTS=%q: want a positive number", s)
		}
		return n
	}
	return 20000
}

// publishEvents publishes n events with ids crash-000000.. to the queue's exchange, persistent,
// each confirmed by the broker, as the collector does.
func publishEvents(t testing.TB, queueURL string, n int) {
	t.Helper()
	ctx := context.Background()
	q, err := stream.OpenQueue(ctx, queueURL)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close(ctx)
	topic := q.Topic()
	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	sem := make(chan struct{}, 2000)
	for i := range n {
		body, _ := json.Marshal(map[string]any{
			"event_id": fmt.Sprintf("crash-%07d", i), "user_id": fmt.Sprintf("u%d", i%997), "item_id": fmt.Sprintf("i%d", i%113),
			"interaction_type": "view", "timestamp": now.Add(-time.Duration(i) * time.Millisecond).UnixMilli(), "source": "collector",
		})
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := topic.Send(ctx, &pubsub.Message{Body: body, BeforeSend: stream.BeforeSend,
				Metadata: map[string]string{stream.ReceivedKey: strconv.FormatInt(time.Now().UnixMilli(), 10)}}); err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("publish: %v", err)
	default:
	}
}

// queueDepth is the number of ready messages in the queue and its consumers.
func queueDepth(t testing.TB, amqpURL, name string) (int, int) {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages, q.Consumers
}

func deleteQueue(amqpURL, name string) {
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		return
	}
	defer conn.Close()
	if ch, err := conn.Channel(); err == nil {
		ch.QueueDelete(name, false, false, false)
		ch.ExchangeDelete(name, false, false)
		ch.Close()
	}
}

// committedRows sums numRecords over the table's files (cheap to poll).
func committedRows(t testing.TB, uri string) int64 {
	ctx := context.Background()
	tbl, err := table.Open(ctx, uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range snap.Files() {
		var st struct{ NumRecords int64 }
		json.Unmarshal([]byte(f.Stats), &st)
		n += st.NumRecords
	}
	return n
}

var batchRE = regexp.MustCompile(`msg=batch .* duplicate=(\d+)`)

// Crash test with RabbitMQ: N events are published; two `lake commit-stream` processes with
// different names consume the queue into one table and are killed with SIGKILL at random points,
// several times, and restarted. At the end every event is in the table exactly once and the
// queue is empty.
func TestCommitStreamCrashRabbit(t *testing.T) {
	amqpURL := requireRabbit(t)
	n := crashEvents(t)
	name := uniqueName("lake-crash")
	queueURL := "rabbit://" + name
	t.Cleanup(func() { deleteQueue(amqpURL, name) })
	uri := filepath.Join(t.TempDir(), "events")
	runLake(t, "create", uri, "--schema", "interactions")
	lake(t)

	t0 := time.Now()
	publishEvents(t, queueURL, n)
	t.Logf("published %d events in %v", n, time.Since(t0))
	if ready, _ := queueDepth(t, amqpURL, name); ready != n {
		t.Fatalf("queue holds %d messages after publishing %d", ready, n)
	}

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	t.Logf("seed %d", seed)
	committer := func(who string) *proc {
		return startLake(t, "commit-stream", "--table", uri, "--queue", queueURL, "--name", "crash-"+who,
			"--batch-rows", "200", "--batch-interval", "100ms", "--log-level", "info")
	}
	// Eight rounds: both committers start, and within a second one or both are killed, most
	// of the time while committing.
	kills := 0
	var all []*proc
	for round := range 8 {
		if committedRows(t, uri) >= int64(n) {
			break
		}
		a, b := committer("a"), committer("b")
		all = append(all, a, b)
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		// Kill one or both, at slightly different moments.
		a.kill9()
		kills++
		if rng.IntN(2) == 0 {
			time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
			b.kill9()
			kills++
		} else {
			b.stop(t)
		}
		t.Logf("round %d: %d of %d rows committed", round, committedRows(t, uri), n)
	}

	// Restart and let them finish.
	a, b := committer("a"), committer("b")
	deadline := time.Now().Add(5 * time.Minute)
	for {
		got := committedRows(t, uri)
		if got >= int64(n) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 minutes %d of %d rows are committed\n%s\n%s", got, n, a.stderr(), b.stderr())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // anything doubled would land now
	a.stop(t)
	b.stop(t)

	ids := columnValues(t, uri, "event_id")
	seen := make(map[string]int, len(ids))
	for _, id := range ids {
		seen[id]++
	}
	doubled := 0
	for _, c := range seen {
		if c > 1 {
			doubled++
		}
	}
	if len(ids) != n || len(seen) != n || doubled != 0 {
		t.Fatalf("table: %d rows, %d distinct event_ids, %d doubled; want %d each once", len(ids), len(seen), doubled, n)
	}
	for i := range n {
		if seen[fmt.Sprintf("crash-%07d", i)] != 1 {
			t.Fatalf("crash-%07d is missing", i)
		}
	}
	ready, consumers := queueDepth(t, amqpURL, name)
	if ready != 0 || consumers != 0 {
		t.Fatalf("queue after the run: %d messages ready, %d consumers; want 0 and 0", ready, consumers)
	}
	// What the committers logged: batches and the redelivered events they dropped.
	var batches, dups int
	for _, p := range append(all, a, b) {
		for _, m := range batchRE.FindAllStringSubmatch(p.stderr(), -1) {
			batches++
			d, _ := strconv.Atoi(m[1])
			dups += d
		}
	}
	t.Logf("%d events exactly once after %d kills -9 in %v; %d batches logged, %d redelivered events recognised and dropped",
		n, kills, time.Since(t0).Round(time.Millisecond), batches, dups)
}

// OpenQueue declares a quorum queue when there is none and uses an existing classic queue as it
// is; either way a message published through the Queue reaches its subscriber, persistent.
func TestOpenQueueRabbitDeclare(t *testing.T) {
	amqpURL := requireRabbit(t)
	ctx := context.Background()
	for _, existing := range []bool{false, true} {
		name := uniqueName("lake-declare")
		t.Cleanup(func() { deleteQueue(amqpURL, name) })
		if existing {
			conn, err := amqp.Dial(amqpURL)
			if err != nil {
				t.Fatal(err)
			}
			ch, _ := conn.Channel()
			if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
				t.Fatal(err)
			}
			conn.Close()
		}
		q, err := stream.OpenQueue(ctx, "rabbit://"+name)
		if err != nil {
			t.Fatalf("existing classic queue %v: %v", existing, err)
		}
		if !q.Durable() {
			t.Error("rabbit:// is durable")
		}
		sub, err := q.Subscribe(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Send(ctx, &pubsub.Message{Body: []byte(`{"x":1}`)}); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		m, err := sub.Receive(rctx)
		cancel()
		if err != nil || string(m.Body) != `{"x":1}` {
			t.Fatalf("receive: %v", err)
		}
		var d amqp.Delivery
		if !m.As(&d) || d.DeliveryMode != amqp.Persistent {
			t.Errorf("delivery mode %d, want persistent", d.DeliveryMode)
		}
		m.Ack()
		if err := q.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// `lake serve --queue rabbit://NAME` and one more `lake commit-stream` on the same queue: events
// posted to the collector land in the table exactly once, committed by both.
func TestServeRabbitScaleOut(t *testing.T) {
	amqpURL := requireRabbit(t)
	name := uniqueName("lake-scaleout")
	t.Cleanup(func() { deleteQueue(amqpURL, name) })
	uri := filepath.Join(t.TempDir(), "events")
	runLake(t, "create", uri, "--schema", "interactions")
	srv, base := startServe(t, "--table", uri, "--queue", "rabbit://"+name, "--write-token", "T",
		"--batch-rows", "100", "--batch-interval", "100ms", "--log-level", "info")
	extra := startLake(t, "commit-stream", "--table", uri, "--queue", "rabbit://"+name, "--name", "extra",
		"--batch-rows", "100", "--batch-interval", "100ms", "--log-level", "info")
	const posts, per = 40, 50
	for p := range posts {
		var buf bytes.Buffer
		for i := range per {
			fmt.Fprintf(&buf, `{"user_id":"u%d","item_id":"i%d","interaction_type":"view"}`+"\n", p, i)
		}
		req, _ := http.NewRequest("POST", base+"/v1/events", &buf)
		req.Header.Set("Authorization", "Bearer T")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("post %d: %s", p, resp.Status)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for committedRows(t, uri) < posts*per && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	// Let the acks of the last batches reach the broker before stopping. (Stopping right as the
	// last commit lands has left a few committed messages unacked, to be redelivered and dropped
	// by the next committer: seen in 2 of 8 runs, not yet explained.)
	time.Sleep(500 * time.Millisecond)
	srv.stop(t)
	extra.stop(t)
	ids := columnValues(t, uri, "event_id")
	distinct := map[string]bool{}
	for _, id := range ids {
		distinct[id] = true
	}
	if len(ids) != posts*per || len(distinct) != posts*per {
		t.Fatalf("%d rows, %d distinct ids; want %d", len(ids), len(distinct), posts*per)
	}
	n1 := strings.Count(srv.stderr(), "msg=batch")
	n2 := strings.Count(extra.stderr(), "msg=batch")
	t.Logf("%d events exactly once; batches: serve %d, commit-stream %d", len(ids), n1, n2)
	if n2 == 0 {
		t.Log("the extra committer took no batch this time (the queue's prefetch went to serve)")
	}
	if ready, _ := queueDepth(t, amqpURL, name); ready != 0 {
		conn, _ := amqp.Dial(amqpURL)
		ch, _ := conn.Channel()
		for range 3 {
			d, ok, err := ch.Get(name, false)
			if ok {
				t.Logf("left: redelivered %v %s", d.Redelivered, d.Body)
			} else {
				t.Log(err)
			}
		}
		conn.Close()
		t.Logf("%s\n%s", srv.stderr(), extra.stderr())
		t.Fatalf("%d messages left in the queue", ready)
	}
}
