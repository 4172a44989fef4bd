package ops

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse/lake/jobs"
)

const sampleYAML = `# lake serve --config
table: /data/events
outputs: /data/out
queue: rabbit://lake-events
server:
  addr: 0.0.0.0:8080
  rate_limit: 0
  max_body: 2MiB
  allowed_origins: [https://shop.example]
committer:
  name: serve-1
  batch_rows: 5000
  batch_interval: 500ms
jobs:
  als:
    every: 6h
    new_interactions: 100000
    factors: 32
    gate_tolerance: 0
  trending:
    follow: true
    window: 15m
maintenance:
  optimize:
    every: 1h
    target_size: 64MiB
    zorder_by: [user_id]
  vacuum:
    every: 1d
    retain: 7d
`

const sampleJSON = `{
  "table": "/data/events",
  "outputs": "/data/out",
  "queue": "rabbit://lake-events",
  "server": {"addr": "0.0.0.0:8080", "rate_limit": 0, "max_body": "2MiB", "allowed_origins": ["https://shop.example"]},
  "committer": {"name": "serve-1", "batch_rows": 5000, "batch_interval": "500ms"},
  "jobs": {
    "als": {"every": "6h", "new_interactions": 100000, "factors": 32, "gate_tolerance": 0},
    "trending": {"follow": true, "window": "15m"}
  },
  "maintenance": {
    "optimize": {"every": "1h", "target_size": "64MiB", "zorder_by": ["user_id"]},
    "vacuum": {"every": "1d", "retain": "7d"}
  }
}`

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadYAMLAndJSON(t *testing.T) {
	for _, f := range []struct{ name, body string }{{"lake.yaml", sampleYAML}, {"lake.json", sampleJSON}} {
		t.Run(f.name, func(t *testing.T) {
			c, err := Load(writeFile(t, f.name, f.body))
			if err != nil {
				t.Fatal(err)
			}
			a := c.Jobs.ALS
			switch {
			case c.Table != "/data/events" || c.Outputs != "/data/out" || c.Queue != "rabbit://lake-events":
				t.Errorf("top level: %+v", c)
			case c.Server.Addr != "0.0.0.0:8080" || *c.Server.RateLimit != 0 || c.Server.MaxBody != 2<<20 || len(c.Server.AllowedOrigins) != 1:
				t.Errorf("server: %+v", c.Server)
			case c.Committer != CommitterConfig{Name: "serve-1", BatchRows: 5000, BatchInterval: Duration(500 * time.Millisecond)}:
				t.Errorf("committer: %+v", c.Committer)
			case a.Every.D() != 6*time.Hour || a.NewInteractions != 100000 || a.Factors != 32 || *a.GateTolerance != 0:
				t.Errorf("als: %+v", a)
			case !c.Jobs.Trending.Follow || c.Jobs.Trending.Window.D() != 15*time.Minute:
				t.Errorf("trending: %+v", c.Jobs.Trending)
			case c.Maintenance.Optimize.Every.D() != time.Hour || c.Maintenance.Optimize.TargetSize != 64<<20 || c.Maintenance.Optimize.ZOrderBy[0] != "user_id":
				t.Errorf("optimize: %+v", c.Maintenance.Optimize)
			case c.Maintenance.Vacuum.Every.D() != 24*time.Hour || c.Maintenance.Vacuum.Retain.D() != 7*24*time.Hour:
				t.Errorf("vacuum: %+v", c.Maintenance.Vacuum)
			}
			// Defaults filled in.
			switch {
			case a.Iterations != jobs.DefaultIterations || a.Alpha != jobs.DefaultAlpha || a.Top != 20 || a.Seed != 1 || a.Solver != jobs.SolverCG:
				t.Errorf("als defaults: %+v", a)
			case a.Poll.D() != DefaultALSPoll || a.Weights["purchase"] != 5:
				t.Errorf("als defaults: poll %v weights %v", a.Poll, a.Weights)
			case c.Jobs.Trending.Poll.D() != time.Second || c.Jobs.Trending.Lateness.D() != 10*time.Minute || c.Jobs.Trending.Top != 20:
				t.Errorf("trending defaults: %+v", c.Jobs.Trending)
			case !*c.Maintenance.Vacuum.Outputs || !*c.Maintenance.Vacuum.LogCleanup:
				t.Errorf("vacuum defaults: %+v", c.Maintenance.Vacuum)
			case c.Retry.Initial.D() != 5*time.Second || c.Retry.Max.D() != 10*time.Minute || c.LogLevel != "warn" || c.OutputsPoll.D() != 3*time.Second:
				t.Errorf("defaults: %+v", c)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	in := &Config{Table: "mem://events"}
	c, err := in.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if c.Queue != DefaultQueue || c.Server.Addr != DefaultAddr || *c.Server.RateLimit != DefaultRateLimit || c.Server.MaxBody != DefaultMaxBody ||
		c.Committer.Name != DefaultCommitterName || c.Committer.BatchRows != DefaultBatchRows || c.Committer.BatchInterval.D() != time.Second {
		t.Errorf("defaults: %+v", c)
	}
	if in.Queue != "" || in.Server.RateLimit != nil {
		t.Errorf("Resolve modified its receiver: %+v", in)
	}
	again, err := c.Resolve()
	if err != nil || *again.Server.RateLimit != *c.Server.RateLimit || again.Queue != c.Queue {
		t.Errorf("resolving twice: %+v %v", again, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name, body string
		line       int
		want       string
	}{
		{"unknown key yaml", "table: x\njobs:\n  als:\n    evry: 6h\n", 4, `unknown field "evry"`},
		{"unknown key json", "{\n  \"table\": \"x\",\n  \"bogus\": 1\n}\n", 3, `unknown field "bogus"`},
		{"bad duration", "table: x\noutputs: y\njobs:\n  als:\n    every: 6x\n", 5, `jobs.als.every: "6x" is not a duration`},
		{"duration without unit", "table: x\ncommitter:\n  batch_interval: 5\n", 3, `committer.batch_interval: "5" is not a duration`},
		{"bad size", "table: x\nserver:\n  max_body: lots\n", 3, `server.max_body: "lots"`},
		{"wrong type", "table: x\ncommitter:\n  batch_rows: many\n", 3, "cannot unmarshal"},
		{"missing table", "outputs: y\n", 0, "table: required"},
		{"empty", "\n", 0, "empty"},
		{"als without outputs", "table: x\njobs:\n  als:\n    every: 1h\n", 0, "jobs.als: needs outputs"},
		{"als without trigger", "table: x\noutputs: y\njobs:\n  als:\n    factors: 8\n", 0, "give every"},
		{"trending both", "table: x\noutputs: y\njobs:\n  trending:\n    follow: true\n    every: 1h\n", 0, "not both"},
		{"optimize without every", "table: x\nmaintenance:\n  optimize:\n    target_size: 1g\n", 0, "maintenance.optimize.every: required"},
		{"bad queue", "table: x\nqueue: kafka://q\n", 0, "unknown scheme"},
		{"bad factors", "table: x\noutputs: y\njobs:\n  als:\n    every: 1h\n    factors: 5000\n", 0, "jobs.als.factors"},
		{"tls half", "table: x\nserver:\n  tls_cert: c.pem\n", 0, "tls_key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, "lake.yaml", c.body)
			_, err := Load(path)
			if err == nil {
				t.Fatalf("no error")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("%v does not match ErrInvalidConfig", err)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Line != c.line {
				t.Errorf("%v: want line %d", err, c.line)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) || !strings.HasPrefix(msg, path+": ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line starting with the path and holding %q", msg, c.want)
			}
		})
	}
}

func TestDurationString(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0"}, {24 * time.Hour, "1d"}, {7 * 24 * time.Hour, "7d"}, {6 * time.Hour, "6h"}, {90 * time.Minute, "1h30m"},
		{30 * time.Minute, "30m"}, {500 * time.Millisecond, "500ms"}, {90 * time.Second, "1m30s"}, {25 * time.Hour, "25h"},
	} {
		got := Duration(c.d).String()
		back, err := ParseDuration(got)
		if got != c.want || err != nil || back.D() != c.d {
			t.Errorf("Duration(%v) = %q (parsed back: %v, %v), want %q", c.d, got, back, err, c.want)
		}
	}
}
