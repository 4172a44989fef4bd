package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"gocloud.dev/pubsub"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/jobs/trending"
	"github.com/lakehouse/lake/registry"
	"github.com/lakehouse/lake/replica"
	"github.com/lakehouse/lake/server"
)

// nopSender is the collector's queue of a read-only server: these tests send no events.
type nopSender struct{}

func (nopSender) Send(context.Context, *pubsub.Message) error { return nil }

// serveOutputs starts what `lake serve --table EVENTS --outputs PREFIX` starts for the read
// APIs (cmd/lake/serve_cmds.go): the outputs served at the versions the registry under prefix
// marks live, and the registry at /v1/models. It returns the server's base URL.
func serveOutputs(t *testing.T, prefix, events string) string {
	t.Helper()
	ctx := context.Background()
	reads, err := server.NewOutputs(prefix, &server.OutputsOptions{Poll: time.Hour, Events: events, Pick: registry.NewPicker(prefix).Pick})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reads.Close() })
	if err := reads.Refresh(ctx); err != nil {
		t.Fatalf("loading the outputs under %s: %v", prefix, err)
	}
	srv, err := server.New(nopSender{}, &server.Options{
		RateLimit: -1, Reads: reads,
		Models: func(ctx context.Context) (any, error) { return registry.NewReport(ctx, prefix) },
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs.URL
}

// getRaw GETs url and returns the status, the Lake-Version header and the body.
func getRaw(t *testing.T, url string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get(server.VersionHeader), b
}

// TestMirrorServe trains and registers models in one region (ALS twice, the second run left a
// candidate, and trending, on S3), syncs the outputs, the registry and the events table to a
// second region (GCS), and serves both: every read API answers the same bytes with the same
// Lake-Version from the mirror, after the first region's store was emptied, as from the first
// region, and /v1/models names the same live runs and the same runs.
func TestMirrorServe(t *testing.T) {
	ctx := context.Background()
	homeURI, away := backend(t, "s3").URI(t), backend(t, "gcs").URI(t)
	events := jobs.ChildURI(homeURI, "events")
	d, err := jobs.Generate(&jobs.GenOptions{Users: 200, Items: 100, Days: 3, Interactions: 3000, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.WriteDataset(ctx, events, d); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	prefix := jobs.ChildURI(homeURI, "out")
	als := func(seed uint64) *registry.Run {
		_, run, err := registry.RunALS(ctx, prefix, &jobs.ALSJobOptions{
			Source: events, SourceVersion: -1, Output: prefix, Top: 5, NoEval: true,
			ALS: jobs.ALSOptions{Factors: 8, Iterations: 3, Seed: seed},
		}, nil)
		if err != nil || run == nil {
			t.Fatalf("als: %v", err)
		}
		return run
	}
	first := als(1)
	if _, err := registry.Promote(ctx, prefix, first.RunID, nil); err != nil {
		t.Fatal(err)
	}
	second := als(2) // a candidate: the live run's versions (not the latest) are served
	if second.Status != registry.StatusCandidate {
		t.Fatalf("second run: %+v", second)
	}
	if _, _, err := registry.RunTrending(ctx, &trending.Options{Source: events, SourceVersion: -1, Output: prefix}, nil); err != nil {
		t.Fatal(err)
	}
	jobsTook := time.Since(start)

	// The other region: every output table, the registry and the events table, synced.
	start = time.Now()
	mirror := jobs.ChildURI(away, "out")
	awayEvents := jobs.ChildURI(away, "events")
	tables := []string{jobs.OutItemFactors, jobs.OutSimilarItems, jobs.OutUserRecommendations, trending.OutTrending, trending.OutPopular, registry.TableName}
	var files, crc, crcc int64
	for _, name := range tables {
		res, err := replica.Sync(ctx, jobs.ChildURI(prefix, name), jobs.ChildURI(mirror, name), nil)
		if err != nil {
			t.Fatalf("sync %s: %v", name, err)
		}
		files, crc, crcc = files+res.FilesCopied, crc+res.FilesCRC32, crcc+res.FilesCRC32C
	}
	if _, err := replica.Sync(ctx, events, awayEvents, nil); err != nil {
		t.Fatal(err)
	}
	syncTook := time.Since(start)

	// The home region answers first; then its store is emptied, so every answer of the mirror
	// comes from the second store alone.
	type answer struct {
		code    int
		version string
		body    []byte
	}
	a := serveOutputs(t, prefix, events)
	home := map[string]answer{}
	get := func(path string) []byte {
		t.Helper()
		c, v, body := getRaw(t, a+path)
		if c != 200 {
			t.Fatalf("GET %s at home: %d %s", path, c, body)
		}
		home[path] = answer{c, v, body}
		return body
	}
	var pop server.WindowAnswer
	if err := json.Unmarshal(get("/v1/popular?k=10"), &pop); err != nil || len(pop.Items) == 0 {
		t.Fatalf("popular: %+v, %v", pop, err)
	}
	get("/v1/trending?k=10")
	items := []string{jobs.ItemID(0), jobs.ItemID(1), jobs.ItemID(50)}
	for _, it := range pop.Items[:min(5, len(pop.Items))] {
		items = append(items, it.ItemID)
	}
	var simVersion int64 = -1
	for _, it := range items {
		var sim server.SimilarAnswer
		if err := json.Unmarshal(get("/v1/items/"+it+"/similar?k=5"), &sim); err != nil {
			t.Fatal(err)
		}
		simVersion = sim.Version
	}
	models := 0
	for u := range int32(12) {
		var recs server.RecsAnswer
		if err := json.Unmarshal(get(fmt.Sprintf("/v1/users/%s/recommendations?k=5", jobs.UserID(u))), &recs); err != nil {
			t.Fatal(err)
		}
		if recs.Source == "model" {
			models++
		}
	}
	if models == 0 {
		t.Fatal("no user was answered from the model")
	}
	_, _, homeModels := getRaw(t, a+"/v1/models")
	wipe(t, homeURI)

	b := serveOutputs(t, mirror, awayEvents)
	for path, want := range home {
		c, v, body := getRaw(t, b+path)
		if c != want.code || v != want.version || string(body) != string(want.body) {
			t.Fatalf("GET %s: home %d (Lake-Version %s) %s\nmirror %d (Lake-Version %s) %s", path, want.code, want.version, want.body, c, v, body)
		}
	}
	checked := len(home)

	// The registry: the same live runs and the same runs; only the prefix differs.
	var ra, rb registry.Report
	code, _, mirrorModels := getRaw(t, b+"/v1/models")
	if code != 200 || json.Unmarshal(homeModels, &ra) != nil || json.Unmarshal(mirrorModels, &rb) != nil {
		t.Fatalf("models: %d %s", code, mirrorModels)
	}
	if ra.Version != rb.Version || ra.Prefix == rb.Prefix || len(ra.Live) != 2 {
		t.Fatalf("models: home %+v, mirror %+v", ra, rb)
	}
	for job, r := range ra.Live {
		if rb.Live[job] == nil || rb.Live[job].RunID != r.RunID {
			t.Fatalf("live %s: home %s, mirror %+v", job, r.RunID, rb.Live[job])
		}
	}
	ja, _ := json.Marshal(ra.Runs)
	jb, _ := json.Marshal(rb.Runs)
	if string(ja) != string(jb) || len(rb.Candidates) != 1 || rb.Candidates[0].RunID != second.RunID {
		t.Fatalf("runs differ:\nhome   %s\nmirror %s", ja, jb)
	}
	if ra.Live[registry.JobALS].RunID != first.RunID || simVersion != first.Outputs[jobs.OutSimilarItems] {
		t.Fatalf("served similar_items v%d, the live run %s names v%d", simVersion, first.RunID, first.Outputs[jobs.OutSimilarItems])
	}
	t.Logf("jobs on s3 %.2fs; sync of %d tables (+ events) to gcs %.2fs, %d files, %d checked by CRC32 (S3's) and %d by CRC32C (GCS's); %d read answers and /v1/models equal (live als %s serves similar_items v%d; candidate %s)",
		jobsTook.Seconds(), len(tables), syncTook.Seconds(), files, crc, crcc, checked, first.RunID, simVersion, second.RunID)
}
