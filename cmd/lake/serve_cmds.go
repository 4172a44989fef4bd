package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/lakehouse/lake/server/ops"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/writer/stream"
)

func init() {
	register(&command{name: "serve", summary: "collect events over HTTP (pixel, POST /v1/events) and commit them to a table through a queue; serve the read APIs over the job outputs (--outputs); run the jobs and the maintenance on a schedule (--config FILE)", run: runServe})
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

// check checks the flags; the table is required unless a configuration file names it.
func (f *committerFlags) check(requireTable bool) error {
	switch {
	case requireTable && *f.table == "":
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

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags("serve", "--table URI [--outputs PREFIX] [--queue URL] [--addr 127.0.0.1:8080] [--write-token T] [--read-token T] [--tls-cert F --tls-key F] [--demo-site] [--batch-rows N] [--batch-interval D] [--name NAME] [--als-every D] [--als-new-interactions N] [--trending-follow] [--optimize-every D] [--vacuum-every D] | --config FILE [flags that override it]", e)
	cf := addCommitterFlags(fs, ops.DefaultQueue, ops.DefaultCommitterName)
	addr := fs.String("addr", ops.DefaultAddr, "the address to listen on (port 0: any free port; the address is printed)")
	writeToken := fs.String("write-token", "", "require 'Authorization: Bearer T' on POST /v1/events (default $LAKE_WRITE_TOKEN; the pixel stays public)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate file: serve HTTPS (with --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key file (with --tls-cert)")
	demo := fs.Bool("demo-site", false, "serve a small demo shop at /demo/ that sends events through /pixel.js")
	rateLimit := fs.Float64("rate-limit", ops.DefaultRateLimit, "requests per second each client IP may make to /p.gif, /v1/events and the read APIs (bursts of twice that); 0 turns the limit off")
	maxBody := fs.Int64("max-body", ops.DefaultMaxBody, "the largest request body in bytes (larger: 413)")
	origins := &listFlag{split: true}
	fs.Var(origins, "allowed-origins", "origins CORS allows, comma-separated (default: any)")
	outputs := fs.String("outputs", "", "the job outputs prefix (lake als / lake trending --output PREFIX): serve the read APIs /v1/items/{id}/similar, /v1/users/{id}/recommendations, /v1/trending, /v1/popular from it, each table at the version the registry PREFIX/models marks live, and the registry at /v1/models; the scheduled jobs write there")
	outputsPoll := fs.Duration("outputs-poll", ops.DefaultOutputsPoll, "how often to check the output tables for a new version (a new version is loaded and swapped in without a restart)")
	readToken := fs.String("read-token", "", "require 'Authorization: Bearer T' on the read APIs (default $LAKE_READ_TOKEN; empty: reads are open)")
	alsEvery := fs.String("als-every", "", "retrain ALS into --outputs this often (e.g. 6h; with --als-new-interactions: whichever comes first)")
	alsNew := fs.Int64("als-new-interactions", 0, "retrain ALS into --outputs when the table holds this many interactions more than at the last ALS run")
	trendFollow := fs.Bool("trending-follow", false, "run trending continuously into --outputs (each window committed when it closes)")
	optimizeEvery := fs.String("optimize-every", "", "compact the table's small files this often, e.g. 1h")
	vacuumEvery := fs.String("vacuum-every", "", "vacuum the table (and the job outputs, keeping the registry's versions) this often, e.g. 1d; the table's retention applies")
	config := fs.String("config", "", "a YAML or JSON file naming the table, the queue, the committer, the server, the jobs and their schedules, and the maintenance (see docs/design.md); the flags given explicitly override its values")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := cf.check(*config == ""); err != nil {
		return err
	}
	if *config == "" && (*tlsCert == "") != (*tlsKey == "") {
		return usagef("give both --tls-cert and --tls-key, or neither")
	}
	if *rateLimit < 0 || *maxBody <= 0 {
		return usagef("--rate-limit must be >= 0 and --max-body positive")
	}
	if *outputsPoll <= 0 {
		return usagef("--outputs-poll must be positive, got %v", *outputsPoll)
	}
	if *alsNew < 0 {
		return usagef("--als-new-interactions must be positive, got %d", *alsNew)
	}
	cfg := &ops.Config{}
	if *config != "" {
		var err error
		if cfg, err = ops.Load(*config); err != nil {
			if errors.Is(err, ops.ErrInvalidConfig) {
				return usagef("--config %v", err)
			}
			return usagef("--config: %v", err)
		}
	}
	// Without --config every flag (given or default) makes the Config; with it, only the flags
	// given on the command line, which override the file.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	use := func(name string) bool { return *config == "" || given[name] }
	duration := func(name, v string) (ops.Duration, error) {
		d, err := ops.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, usagef("--%s %q: want a positive duration, e.g. 30m, 6h or 1d", name, v)
		}
		return d, nil
	}
	for _, f := range []struct {
		name string
		set  func() error
	}{
		{"table", func() error { cfg.Table = *cf.table; return nil }},
		{"queue", func() error { cfg.Queue = *cf.queue; return nil }},
		{"name", func() error { cfg.Committer.Name = *cf.name; return nil }},
		{"batch-rows", func() error { cfg.Committer.BatchRows = *cf.batchRows; return nil }},
		{"batch-interval", func() error { cfg.Committer.BatchInterval = ops.Duration(*cf.batchInterval); return nil }},
		{"log-level", func() error { cfg.LogLevel = *cf.logLevel; return nil }},
		{"addr", func() error { cfg.Server.Addr = *addr; return nil }},
		{"write-token", func() error { cfg.Server.WriteToken = *writeToken; return nil }},
		{"read-token", func() error { cfg.Server.ReadToken = *readToken; return nil }},
		{"tls-cert", func() error { cfg.Server.TLSCert = *tlsCert; return nil }},
		{"tls-key", func() error { cfg.Server.TLSKey = *tlsKey; return nil }},
		{"demo-site", func() error { cfg.Server.DemoSite = *demo; return nil }},
		{"rate-limit", func() error { cfg.Server.RateLimit = rateLimit; return nil }},
		{"max-body", func() error { cfg.Server.MaxBody = ops.Size(*maxBody); return nil }},
		{"allowed-origins", func() error { cfg.Server.AllowedOrigins = origins.vals; return nil }},
		{"outputs", func() error { cfg.Outputs = *outputs; return nil }},
		{"outputs-poll", func() error { cfg.OutputsPoll = ops.Duration(*outputsPoll); return nil }},
		{"als-every", func() (err error) {
			if *alsEvery == "" {
				return nil
			}
			if cfg.Jobs.ALS == nil {
				cfg.Jobs.ALS = &ops.ALSConfig{}
			}
			cfg.Jobs.ALS.Every, err = duration("als-every", *alsEvery)
			return err
		}},
		{"als-new-interactions", func() error {
			if *alsNew == 0 {
				return nil
			}
			if cfg.Jobs.ALS == nil {
				cfg.Jobs.ALS = &ops.ALSConfig{}
			}
			cfg.Jobs.ALS.NewInteractions = *alsNew
			return nil
		}},
		{"trending-follow", func() error {
			if *trendFollow {
				cfg.Jobs.Trending = &ops.TrendingConfig{Follow: true}
			}
			return nil
		}},
		{"optimize-every", func() (err error) {
			if *optimizeEvery == "" {
				return nil
			}
			if cfg.Maintenance.Optimize == nil {
				cfg.Maintenance.Optimize = &ops.OptimizeConfig{}
			}
			cfg.Maintenance.Optimize.Every, err = duration("optimize-every", *optimizeEvery)
			return err
		}},
		{"vacuum-every", func() (err error) {
			if *vacuumEvery == "" {
				return nil
			}
			if cfg.Maintenance.Vacuum == nil {
				cfg.Maintenance.Vacuum = &ops.VacuumConfig{}
			}
			cfg.Maintenance.Vacuum.Every, err = duration("vacuum-every", *vacuumEvery)
			return err
		}},
	} {
		if use(f.name) {
			if err := f.set(); err != nil {
				return err
			}
		}
	}
	cfg.EnvTokens()
	resolved, err := cfg.Resolve()
	if err != nil {
		return usagef("%v", err)
	}
	serverGC()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := slog.LevelWarn
	var progress io.Writer
	if resolved.LogLevel == "info" {
		level, progress = slog.LevelInfo, e.stderr
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	err = ops.Run(ctx, resolved, &ops.RunOptions{Logger: logger, Stdout: e.stderr, Progress: progress})
	if errors.Is(err, ops.ErrInvalidConfig) {
		return usagef("%v", err)
	}
	return err
}

func runCommitStream(ctx context.Context, e *env, args []string) error {
	fs := newFlags("commit-stream", "--table URI --queue URL [--name NAME] [--batch-rows N] [--batch-interval D]", e)
	host, _ := os.Hostname()
	cf := addCommitterFlags(fs, "", "commit-stream-"+host)
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	if err := cf.check(true); err != nil {
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
	var stats ops.Stats
	c, err := stream.New(ctx, t, sub, &stream.Options{
		Name: *cf.name, BatchRows: *cf.batchRows, BatchInterval: *cf.batchInterval, Logger: logger, OnCommit: stats.Add,
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
	t, err := ops.OpenTable(ctx, *cf.table)
	if err != nil {
		return nil, nil, nil, err
	}
	q, err := stream.OpenQueue(ctx, *cf.queue)
	if err != nil {
		t.Close()
		return nil, nil, nil, usagef("--queue: %v", err)
	}
	return t, q, func() { ops.CloseQueue(q, logger); t.Close() }, nil
}
