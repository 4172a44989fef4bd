package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lakehouse/lake/registry"
	"github.com/lakehouse/lake/server"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer/stream"
)

func init() {
	register(&command{name: "serve", summary: "collect events over HTTP (pixel, POST /v1/events) and commit them to a table through a queue; serve the read APIs over the job outputs (--outputs)", run: runServe})
	register(&command{name: "commit-stream", summary: "one more committer: consume a queue into a table", run: runCommitStream})
}

const queueHelp = `queue URL: mem://NAME (embedded in this process, NOT durable: events queued but not yet committed are lost if the process dies; one committer) or rabbit://NAME (RabbitMQ at $RABBIT_SERVER_URL, e.g. amqp://guest:guest@127.0.0.1:5672/; NAME is both the durable fanout exchange the collector publishes to and the durable queue the committers share, declared at start; exactly once across crashes)`

// committerFlags are the flags serve and commit-stream share.
type committerFlags struct {
	table, queue, name, logLevel *string
	batchRows                    *int
	batchInterval                *time.Duration
}

func addCommitterFlags(fs interface {
	String(string, string, string) *string
	Int(string, int, string) *int
	Duration(string, time.Duration, string) *time.Duration
}, defQueue, defName string) *committerFlags {
	return &committerFlags{
		table:         fs.String("table", "", "the interaction table URI (required; create it with: lake create URI --schema interactions)"),
		queue:         fs.String("queue", defQueue, queueHelp),
		name:          fs.String("name", defName, "the committer's name: the appId of its commits; unique among running committers, the same across restarts"),
		batchRows:     fs.Int("batch-rows", 10000, "commit a batch at this many events"),
		batchInterval: fs.Duration("batch-interval", time.Second, "commit a batch this long after its first event (Go duration: 500ms, 2s)"),
		logLevel:      fs.String("log-level", "warn", "what goes to stderr: warn (failures and retries) or info (also one line per batch)"),
	}
}

func (f *committerFlags) logger(e *env) *slog.Logger {
	level := slog.LevelWarn
	if *f.logLevel == "info" {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
}

func (f *committerFlags) check() error {
	switch {
	case *f.table == "":
		return usagef("--table is required")
	case *f.queue == "":
		return usagef("--queue is required: %s", queueHelp)
	case *f.name == "":
		return usagef("--name must not be empty")
	case *f.batchRows <= 0:
		return usagef("--batch-rows must be positive, got %d", *f.batchRows)
	case *f.batchInterval <= 0:
		return usagef("--batch-interval must be positive, got %v", *f.batchInterval)
	case *f.logLevel != "warn" && *f.logLevel != "info":
		return usagef("--log-level %q: want warn or info", *f.logLevel)
	}
	return nil
}

// openStreamTable opens the table and checks it can take interaction events.
func openStreamTable(ctx context.Context, uri string) (*table.Table, error) {
	t, err := openTable(ctx, uri)
	if err != nil {
		if errors.Is(err, txlog.ErrNotATable) {
			return nil, fmt.Errorf("%s is not a table: create it first with `lake create %s --schema interactions`", uri, uri)
		}
		return nil, err
	}
	snap, err := t.Snapshot(ctx)
	if err != nil {
		t.Close()
		return nil, err
	}
	for _, c := range []string{"event_id", "user_id", "item_id", "interaction_type", "timestamp", "event_date"} {
		if _, ok := snap.Schema().Field(c); !ok {
			t.Close()
			return nil, fmt.Errorf("%s has no %s column: events go to a table with the interaction schema (lake create URI --schema interactions)", uri, c)
		}
	}
	return t, nil
}

// batchStats sums what the committer did, for the closing line.
type batchStats struct{ batches, written, quarantined, duplicate atomic.Int64 }

func (s *batchStats) add(b stream.BatchResult) {
	if b.Version >= 0 {
		s.batches.Add(1)
	}
	s.written.Add(b.Written)
	s.quarantined.Add(b.Quarantined)
	s.duplicate.Add(b.Duplicate)
}

func (s *batchStats) String() string {
	return fmt.Sprintf("committed %d events in %d batches (%d quarantined, %d duplicates dropped)",
		s.written.Load(), s.batches.Load(), s.quarantined.Load(), s.duplicate.Load())
}

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags("serve", "--table URI [--outputs PREFIX] [--queue URL] [--addr 127.0.0.1:8080] [--write-token T] [--read-token T] [--tls-cert F --tls-key F] [--demo-site] [--batch-rows N] [--batch-interval D] [--name NAME]", e)
	cf := addCommitterFlags(fs, "mem://lake-events", "lake-serve")
	addr := fs.String("addr", "127.0.0.1:8080", "the address to listen on (port 0: any free port; the address is printed)")
	writeToken := fs.String("write-token", "", "require 'Authorization: Bearer T' on POST /v1/events (default $LAKE_WRITE_TOKEN; the pixel stays public)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate file: serve HTTPS (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key file (with --tls-cert)")
	demo := fs.Bool("demo-site", false, "serve a small demo shop at /demo/ that sends events through /pixel.js")
	rateLimit := fs.Float64("rate-limit", 200, "requests per second each client IP may make to /p.gif, /v1/events and the read APIs (bursts of twice that); 0 turns the limit off")
	maxBody := fs.Int64("max-body", 1<<20, "the largest request body in bytes (larger: 413)")
	origins := &listFlag{split: true}
	fs.Var(origins, "allowed-origins", "origins CORS allows, comma-separated (default: any)")
	outputs := fs.String("outputs", "", "the job outputs prefix (lake als / lake trending --output PREFIX): serve the read APIs /v1/items/{id}/similar, /v1/users/{id}/recommendations, /v1/trending, /v1/popular from it, each table at the version the registry PREFIX/models marks live, and the registry at /v1/models")
	outputsPoll := fs.Duration("outputs-poll", 3*time.Second, "how often to check the output tables for a new version (a new version is loaded and swapped in without a restart)")
	readToken := fs.String("read-token", "", "require 'Authorization: Bearer T' on the read APIs (default $LAKE_READ_TOKEN; empty: reads are open)")
	config := fs.String("config", "", "a configuration file (not supported yet)")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := cf.check(); err != nil {
		return err
	}
	if *config != "" {
		return usagef("--config is not supported yet: give the settings as flags")
	}
	serverGC()
	if (*tlsCert == "") != (*tlsKey == "") {
		return usagef("give both --tls-cert and --tls-key, or neither")
	}
	if *rateLimit < 0 || *maxBody <= 0 {
		return usagef("--rate-limit must be >= 0 and --max-body positive")
	}
	if *writeToken == "" {
		*writeToken = os.Getenv("LAKE_WRITE_TOKEN")
	}
	if *readToken == "" {
		*readToken = os.Getenv("LAKE_READ_TOKEN")
	}
	if *outputsPoll <= 0 {
		return usagef("--outputs-poll must be positive, got %v", *outputsPoll)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := cf.logger(e)

	t, q, closeAll, err := cf.open(ctx, logger)
	if err != nil {
		return err
	}
	defer closeAll()
	var reads *server.Outputs
	if *outputs != "" {
		// Each output table is served at the version the registry (PREFIX/models) marks live.
		pick := registry.NewPicker(*outputs).Pick
		if reads, err = server.NewOutputs(*outputs, &server.OutputsOptions{Poll: *outputsPoll, Events: t.URI(), Logger: logger, Pick: pick}); err != nil {
			return err
		}
		defer reads.Close()
		// Load what is there before listening, so the first answers do not wait for a poll.
		if err := reads.Refresh(ctx); err != nil {
			logger.Warn("loading the job outputs", "prefix", *outputs, "err", err)
		}
	}
	metrics := server.NewMetrics()
	rl := *rateLimit
	if rl == 0 {
		rl = -1
	}
	srv, err := server.New(q, &server.Options{
		WriteToken: *writeToken, MaxBodyBytes: *maxBody, RateLimit: rl, AllowedOrigins: origins.vals,
		DemoSite: *demo, Metrics: metrics, Logger: logger, BeforeSend: stream.BeforeSend,
		Reads: reads, ReadToken: *readToken, Models: modelsReport(*outputs),
	})
	if err != nil {
		return err
	}
	sub, err := q.Subscribe(ctx, 2**cf.batchRows)
	if err != nil {
		return err
	}
	var stats batchStats
	c, err := stream.New(ctx, t, sub, &stream.Options{
		Name: *cf.name, BatchRows: *cf.batchRows, BatchInterval: *cf.batchInterval,
		DrainOnStop: !q.Durable(), Logger: logger,
		OnCommit: func(b stream.BatchResult) {
			stats.add(b)
			metrics.ObserveCommit(server.CommitObservation{Committer: b.Committer, Version: b.Version,
				Committed: b.Written, Quarantined: b.Quarantined, Duplicate: b.Duplicate, Lag: b.Lag})
		},
	})
	if err != nil {
		return err
	}
	defer c.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another server running there? choose another --addr)", *addr, err)
	}
	scheme := "http"
	if *tlsCert != "" {
		scheme = "https"
	}
	durable := "RabbitMQ, durable"
	if !q.Durable() {
		durable = "embedded, not durable"
	}
	fmt.Fprintf(e.stderr, "lake serve: listening on %s://%s (queue %s, %s; committer %q into %s)\n", scheme, ln.Addr(), q.URL(), durable, c.Name(), t.URI())
	if *demo {
		fmt.Fprintf(e.stderr, "lake serve: demo shop at %s://%s/demo/\n", scheme, ln.Addr())
	}
	if reads != nil {
		fmt.Fprintf(e.stderr, "lake serve: read APIs over %s (loaded: %s)\n", reads.Prefix(), versionsLine(reads.Versions()))
	}

	// The committer runs until the HTTP server has stopped, so every event the collector accepted
	// is committed (mem://: drained) or left in the durable queue.
	sctx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	cctx, stopCommitter := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCommitter()
	cerr := make(chan error, 1)
	if reads != nil {
		readsDone := make(chan struct{})
		go func() { defer close(readsDone); reads.Run(sctx) }()
		defer func() { stopServing(); <-readsDone }() // before reads.Close
	}
	go func() {
		err := c.Run(cctx)
		if err != nil {
			stopServing() // a committer that cannot commit should not take more events
		}
		cerr <- err
	}()
	serr := server.Serve(sctx, ln, srv, &server.ServeOptions{TLSCert: *tlsCert, TLSKey: *tlsKey, Logger: logger})
	stopCommitter()
	err = <-cerr
	fmt.Fprintf(e.stderr, "lake serve: stopped; %s\n", &stats)
	return errors.Join(serr, err)
}

// modelsReport is GET /v1/models: the registry under the outputs prefix (nil without --outputs).
func modelsReport(prefix string) func(ctx context.Context) (any, error) {
	if prefix == "" {
		return nil
	}
	return func(ctx context.Context) (any, error) { return registry.NewReport(ctx, prefix) }
}

// versionsLine renders the output versions loaded, e.g. "popular v3, similar_items v2".
func versionsLine(v map[string]int64) string {
	if len(v) == 0 {
		return "none yet; the endpoints answer 503 until the jobs have run"
	}
	parts := make([]string, 0, len(v))
	for _, name := range []string{server.OutSimilar, server.OutRecs, server.OutTrend, server.OutPopular} {
		if ver, ok := v[name]; ok {
			parts = append(parts, fmt.Sprintf("%s v%d", name, ver))
		}
	}
	return strings.Join(parts, ", ")
}

// closeQueue shuts the queue down (pending acks are sent) and logs what failed: an ack that did
// not reach the broker means a redelivery later, which the next committer drops by event_id.
func closeQueue(q *stream.Queue, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		logger.Warn("closing the queue", "queue", q.URL(), "err", err)
	}
}

func runCommitStream(ctx context.Context, e *env, args []string) error {
	fs := newFlags("commit-stream", "--table URI --queue URL [--name NAME] [--batch-rows N] [--batch-interval D]", e)
	host, _ := os.Hostname()
	cf := addCommitterFlags(fs, "", "commit-stream-"+host)
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := cf.check(); err != nil {
		return err
	}
	if strings.HasPrefix(*cf.queue, "mem:") {
		return usagef("--queue %s: a mem:// queue lives inside one process; a separate committer needs a shared queue such as rabbit://NAME", *cf.queue)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := cf.logger(e)
	t, q, closeAll, err := cf.open(ctx, logger)
	if err != nil {
		return err
	}
	defer closeAll()
	sub, err := q.Subscribe(ctx, 2**cf.batchRows)
	if err != nil {
		return err
	}
	var stats batchStats
	c, err := stream.New(ctx, t, sub, &stream.Options{
		Name: *cf.name, BatchRows: *cf.batchRows, BatchInterval: *cf.batchInterval, Logger: logger, OnCommit: stats.add,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(e.stderr, "lake commit-stream: committer %q from %s into %s\n", c.Name(), q.URL(), t.URI())
	err = c.Run(ctx)
	fmt.Fprintf(e.stderr, "lake commit-stream: stopped; %s\n", &stats)
	return err
}

// serverGC tunes the garbage collector of a long-running server unless GOGC or GOMEMLIMIT say
// otherwise: a collector's heap is small and short-lived per request, so collecting at 4x the live
// heap (with a 1 GiB soft limit) cuts the CPU per event by a third (BenchmarkPixel: 21 -> 14 µs) and trims
// the pauses that set the tail latency.
func serverGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}

// open opens the committer's table and queue; the function returned closes both.
func (cf *committerFlags) open(ctx context.Context, logger *slog.Logger) (*table.Table, *stream.Queue, func(), error) {
	t, err := openStreamTable(ctx, *cf.table)
	if err != nil {
		return nil, nil, nil, err
	}
	q, err := stream.OpenQueue(ctx, *cf.queue)
	if err != nil {
		t.Close()
		return nil, nil, nil, usagef("--queue: %v", err)
	}
	return t, q, func() { closeQueue(q, logger); t.Close() }, nil
}
