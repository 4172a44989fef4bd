package ops

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/lakehouse/lake/compaction"
	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/jobs/trending"
	"github.com/lakehouse/lake/registry"
)

// Config is what `lake serve` runs: the shape of the --config file (YAML, or JSON, which is
// YAML too). Every key is optional except table; a key the file does not give takes the default
// written beside it. Durations are strings in Go's forms plus d and w ("30s", "6h", "1d", "2w");
// sizes are a number of bytes or a string with a binary unit ("128MiB", "1g"). An unknown key is
// an error naming its line.
//
//	table: s3://lake/events?region=eu-west-1    # the interaction table (required)
//	outputs: s3://lake/out?region=eu-west-1     # the job outputs prefix (needed by jobs)
//	queue: rabbit://lake-events
//	server: {addr: "0.0.0.0:8080", read_token: "...", write_token: "..."}
//	committer: {name: lake-serve-1, batch_rows: 10000, batch_interval: 1s}
//	jobs:
//	  als: {every: 6h, new_interactions: 100000, factors: 64}
//	  trending: {follow: true, window: 1h}
//	maintenance:
//	  optimize: {every: 1h}
//	  vacuum: {every: 1d, retain: 7d}
//
// A Config is plain data: Resolve returns a copy with the defaults filled in and checks it.
type Config struct {
	// Table is the URI of the interaction table the committer appends to (required; create it
	// with `lake create URI --schema interactions`).
	Table string `yaml:"table" json:"table"`
	// Outputs is the job outputs prefix: the jobs write PREFIX/similar_items, PREFIX/trending,
	// ... and register their runs in PREFIX/models; the read APIs serve from it. Empty: no read
	// APIs and no jobs.
	Outputs string `yaml:"outputs" json:"outputs,omitempty"`
	// OutputsPoll is how often the read APIs look for a new live version of each output
	// (default 3s).
	OutputsPoll Duration `yaml:"outputs_poll" json:"outputs_poll"`
	// Queue is the queue between collector and committer: mem://NAME (embedded, not durable)
	// or rabbit://NAME (RabbitMQ at $RABBIT_SERVER_URL). Default mem://lake-events.
	Queue string `yaml:"queue" json:"queue"`
	// LogLevel is what goes to the log: warn (default; failures and retries) or info (also one
	// line per batch and per scheduled run).
	LogLevel string `yaml:"log_level" json:"log_level"`

	Server      ServerConfig      `yaml:"server" json:"server"`
	Committer   CommitterConfig   `yaml:"committer" json:"committer"`
	Jobs        JobsConfig        `yaml:"jobs" json:"jobs"`
	Maintenance MaintenanceConfig `yaml:"maintenance" json:"maintenance"`
	Retry       RetryConfig       `yaml:"retry" json:"retry"`
}

// ServerConfig is the HTTP side.
type ServerConfig struct {
	// Addr is the address to listen on (default 127.0.0.1:8080; port 0: any free port).
	Addr string `yaml:"addr" json:"addr"`
	// WriteToken, when set, is required as `Authorization: Bearer T` on POST /v1/events.
	WriteToken string `yaml:"write_token" json:"-"`
	// ReadToken, when set, is required on the read APIs.
	ReadToken string `yaml:"read_token" json:"-"`
	// TLSCert and TLSKey are PEM files: serve HTTPS (both or neither).
	TLSCert string `yaml:"tls_cert" json:"tls_cert,omitempty"`
	TLSKey  string `yaml:"tls_key" json:"tls_key,omitempty"`
	// RateLimit is the requests per second each client IP may make (bursts of twice that);
	// default 200; 0 turns the limit off.
	RateLimit *float64 `yaml:"rate_limit" json:"rate_limit"`
	// MaxBody is the largest request body (default 1MiB).
	MaxBody Size `yaml:"max_body" json:"max_body"`
	// AllowedOrigins are the origins CORS allows (default: any).
	AllowedOrigins []string `yaml:"allowed_origins" json:"allowed_origins,omitempty"`
	// DemoSite serves a small demo shop at /demo/.
	DemoSite bool `yaml:"demo_site" json:"demo_site"`
}

// CommitterConfig is the committer that moves events from the queue into the table.
type CommitterConfig struct {
	// Name is the appId of its commits: unique among running committers, the same across
	// restarts (default lake-serve).
	Name string `yaml:"name" json:"name"`
	// BatchRows: a batch is committed at this many events (default 10000).
	BatchRows int `yaml:"batch_rows" json:"batch_rows"`
	// BatchInterval: a batch is committed this long after its first event (default 1s).
	BatchInterval Duration `yaml:"batch_interval" json:"batch_interval"`
}

// JobsConfig are the scheduled jobs; a job left out is not run.
type JobsConfig struct {
	ALS      *ALSConfig      `yaml:"als" json:"als,omitempty"`
	Trending *TrendingConfig `yaml:"trending" json:"trending,omitempty"`
}

// ALSConfig schedules `lake als` on the table into the outputs, gated by the registry: a run
// starts when Every has passed since the end of the last run, or when the table holds at least
// NewInteractions more rows than the source version of the last ALS run, whichever comes
// first (at least one of the two is required). The first run waits for NewInteractions rows,
// or for the first Every tick with a non-empty table. A run on a source version the outputs
// already hold is skipped.
type ALSConfig struct {
	Every           Duration `yaml:"every" json:"every"`
	NewInteractions int64    `yaml:"new_interactions" json:"new_interactions"`
	// Poll is how often the table's row count is checked for NewInteractions (default 10s).
	Poll Duration `yaml:"poll" json:"poll"`

	// The parameters of `lake als` (same names, same defaults).
	Factors       int                `yaml:"factors" json:"factors"`
	Iterations    int                `yaml:"iterations" json:"iterations"`
	Alpha         float64            `yaml:"alpha" json:"alpha"`
	Lambda        float64            `yaml:"lambda" json:"lambda"`
	Weights       map[string]float64 `yaml:"weights" json:"weights,omitempty"` // default view 1, add_to_cart 3, purchase 5
	WeightByValue bool               `yaml:"weight_by_value" json:"weight_by_value"`
	HalfLife      Duration           `yaml:"half_life" json:"half_life"` // 0: no time decay
	Top           int                `yaml:"top" json:"top"`
	Seed          uint64             `yaml:"seed" json:"seed"`
	Solver        string             `yaml:"solver" json:"solver"`
	CGSteps       int                `yaml:"cg_steps" json:"cg_steps"`
	NoEval        bool               `yaml:"no_eval" json:"no_eval"`
	EvalUsers     int                `yaml:"eval_users" json:"eval_users"`
	// GateTolerance: a run goes live only if its recall@10 is at most this much below the live
	// run's (default 0.02).
	GateTolerance *float64 `yaml:"gate_tolerance" json:"gate_tolerance"`
}

// TrendingConfig schedules `lake trending`: Follow keeps it running (each window is committed
// when it closes; restarted with backoff if it fails), or Every runs it as a batch job.
type TrendingConfig struct {
	Follow bool `yaml:"follow" json:"follow"`
	// Poll is how often a follower looks for new commits (default 1s).
	Poll  Duration `yaml:"poll" json:"poll"`
	Every Duration `yaml:"every" json:"every"`

	// The parameters of `lake trending` (same defaults).
	Window    Duration           `yaml:"window" json:"window"`               // default 1h, at least 1s
	Origin    string             `yaml:"window_origin" json:"window_origin"` // RFC 3339; default 1970-01-05T00:00:00Z
	Lateness  *Duration          `yaml:"lateness" json:"lateness"`           // default 10m; 0 for windows of a day or more
	Threshold float64            `yaml:"threshold" json:"threshold"`
	MinCount  float64            `yaml:"min_count" json:"min_count"`
	Top       int                `yaml:"top" json:"top"`
	Weights   map[string]float64 `yaml:"weights" json:"weights,omitempty"`
	Types     []string           `yaml:"types" json:"types,omitempty"`
	Count     string             `yaml:"count" json:"count"` // users (default), events or value
}

// MaintenanceConfig schedules table maintenance; a task left out is not run.
type MaintenanceConfig struct {
	Optimize *OptimizeConfig `yaml:"optimize" json:"optimize,omitempty"`
	Vacuum   *VacuumConfig   `yaml:"vacuum" json:"vacuum,omitempty"`
}

// OptimizeConfig compacts the events table's small files every Every (required).
type OptimizeConfig struct {
	Every      Duration `yaml:"every" json:"every"`
	TargetSize Size     `yaml:"target_size" json:"target_size"` // default: the table's delta.targetFileSize, else 128MiB
	ZOrderBy   []string `yaml:"zorder_by" json:"zorder_by,omitempty"`
}

// VacuumConfig deletes unreferenced files every Every (required): of the events table and,
// unless Outputs is false, of the job output tables (keeping the versions the registry serves
// or rolls back to); then, unless LogCleanup is false, the expired log files.
type VacuumConfig struct {
	Every      Duration `yaml:"every" json:"every"`
	Retain     Duration `yaml:"retain" json:"retain"` // default: the table's delta.deletedFileRetentionDuration (7 days)
	Force      bool     `yaml:"force" json:"force"`   // allow a retention shorter than the table's
	Outputs    *bool    `yaml:"outputs" json:"outputs"`
	LogCleanup *bool    `yaml:"log_cleanup" json:"log_cleanup"`
}

// RetryConfig is the backoff of a failed scheduled run: Initial (default 5s), doubling per
// consecutive failure up to Max (default 10m), with ±20% jitter.
type RetryConfig struct {
	Initial Duration `yaml:"initial" json:"initial"`
	Max     Duration `yaml:"max" json:"max"`
}

// Defaults.
const (
	DefaultAddr          = "127.0.0.1:8080"
	DefaultQueue         = "mem://lake-events"
	DefaultCommitterName = "lake-serve"
	DefaultBatchRows     = 10000
	DefaultBatchInterval = time.Second
	DefaultOutputsPoll   = 3 * time.Second
	DefaultRateLimit     = 200
	DefaultMaxBody       = 1 << 20
	DefaultALSPoll       = 10 * time.Second
	DefaultTrendingPoll  = time.Second
	DefaultRetryInitial  = 5 * time.Second
	DefaultRetryMax      = 10 * time.Minute
)

// ConfigError is a configuration that cannot run: the field (a dotted path such as
// jobs.als.every), the line when it comes from a file (0: unknown) and what is wrong.
type ConfigError struct {
	Line  int
	Field string
	Msg   string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes every ConfigError match ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

func cfgErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Load reads the configuration file at path (YAML or JSON), fills the defaults and checks it.
// A mistake is an error naming the file, the line when known, and the field.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b)
	if err == nil {
		c, err = c.Resolve()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse reads a configuration (YAML or JSON) strictly: an unknown key, a value of the wrong
// type or a bad duration is an error with its line. It does not fill defaults (see Resolve).
func Parse(b []byte) (*Config, error) {
	var c Config
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, &ConfigError{Msg: "the configuration is empty; it needs at least `table: URI`"}
	}
	if err := yaml.NewDecoder(bytes.NewReader(b), yaml.Strict()).Decode(&c); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			return nil, ce
		}
		var ye yaml.Error
		if errors.As(err, &ye) {
			e := &ConfigError{Msg: ye.GetMessage()}
			if tk := ye.GetToken(); tk != nil && tk.Position != nil {
				e.Line = tk.Position.Line
			}
			return nil, e
		}
		return nil, &ConfigError{Msg: err.Error()}
	}
	return &c, nil
}

// Resolve returns a copy of c with the defaults filled in, or a *ConfigError (matching
// ErrInvalidConfig) naming the first field that cannot work. c is not modified; resolving a
// resolved Config changes nothing.
func (c *Config) Resolve() (*Config, error) {
	r := c.clone()
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defDur := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	if r.Table == "" {
		return nil, cfgErr("table", "required: the interaction table URI (create it with `lake create URI --schema interactions`)")
	}
	def(&r.Queue, DefaultQueue)
	if !strings.HasPrefix(r.Queue, "mem://") && !strings.HasPrefix(r.Queue, "rabbit://") {
		return nil, cfgErr("queue", "%q: unknown scheme; want mem://NAME (embedded, not durable) or rabbit://NAME (RabbitMQ at $RABBIT_SERVER_URL)", r.Queue)
	}
	def(&r.LogLevel, "warn")
	if r.LogLevel != "warn" && r.LogLevel != "info" {
		return nil, cfgErr("log_level", "%q: want warn or info", r.LogLevel)
	}
	defDur(&r.OutputsPoll, DefaultOutputsPoll)
	if r.OutputsPoll < 0 {
		return nil, cfgErr("outputs_poll", "must be positive, got %v", r.OutputsPoll)
	}

	s := &r.Server
	def(&s.Addr, DefaultAddr)
	if (s.TLSCert == "") != (s.TLSKey == "") {
		return nil, cfgErr("server.tls_cert", "give both tls_cert and tls_key, or neither")
	}
	if s.RateLimit == nil {
		v := float64(DefaultRateLimit)
		s.RateLimit = &v
	}
	if *s.RateLimit < 0 || math.IsNaN(*s.RateLimit) || math.IsInf(*s.RateLimit, 0) {
		return nil, cfgErr("server.rate_limit", "%v: want 0 (off) or more", *s.RateLimit)
	}
	if s.MaxBody == 0 {
		s.MaxBody = DefaultMaxBody
	}
	if s.MaxBody < 0 {
		return nil, cfgErr("server.max_body", "must be positive")
	}

	cm := &r.Committer
	def(&cm.Name, DefaultCommitterName)
	defInt(&cm.BatchRows, DefaultBatchRows)
	defDur(&cm.BatchInterval, DefaultBatchInterval)
	if cm.BatchRows < 0 {
		return nil, cfgErr("committer.batch_rows", "must be positive, got %d", cm.BatchRows)
	}
	if cm.BatchInterval < 0 {
		return nil, cfgErr("committer.batch_interval", "must be positive, got %v", cm.BatchInterval)
	}

	if a := r.Jobs.ALS; a != nil {
		if r.Outputs == "" {
			return nil, cfgErr("jobs.als", "needs outputs (--outputs): the prefix the job writes to and the read APIs serve")
		}
		if err := a.resolve(); err != nil {
			return nil, err
		}
	}
	if t := r.Jobs.Trending; t != nil {
		if r.Outputs == "" {
			return nil, cfgErr("jobs.trending", "needs outputs (--outputs): the prefix the job writes to and the read APIs serve")
		}
		if err := t.resolve(); err != nil {
			return nil, err
		}
	}
	if o := r.Maintenance.Optimize; o != nil {
		if o.Every <= 0 {
			return nil, cfgErr("maintenance.optimize.every", "required: how often to optimize, e.g. 1h")
		}
		if o.TargetSize < 0 {
			return nil, cfgErr("maintenance.optimize.target_size", "must be positive")
		}
		for _, col := range o.ZOrderBy {
			if strings.TrimSpace(col) == "" {
				return nil, cfgErr("maintenance.optimize.zorder_by", "an empty column name")
			}
		}
	}
	if v := r.Maintenance.Vacuum; v != nil {
		if v.Every <= 0 {
			return nil, cfgErr("maintenance.vacuum.every", "required: how often to vacuum, e.g. 1d")
		}
		if v.Retain < 0 {
			return nil, cfgErr("maintenance.vacuum.retain", "must be 0 (the table's retention) or more")
		}
		t := true
		if v.Outputs == nil {
			v.Outputs = &t
		}
		if v.LogCleanup == nil {
			v.LogCleanup = &t
		}
	}
	defDur(&r.Retry.Initial, DefaultRetryInitial)
	defDur(&r.Retry.Max, DefaultRetryMax)
	if r.Retry.Initial < 0 || r.Retry.Max < r.Retry.Initial {
		return nil, cfgErr("retry", "want 0 < initial <= max, got initial %v, max %v", r.Retry.Initial, r.Retry.Max)
	}
	return r, nil
}

func (a *ALSConfig) resolve() error {
	const p = "jobs.als."
	switch {
	case a.Every < 0:
		return cfgErr(p+"every", "must be positive")
	case a.NewInteractions < 0:
		return cfgErr(p+"new_interactions", "must be positive")
	case a.Every == 0 && a.NewInteractions == 0:
		return cfgErr("jobs.als", "give every (e.g. 6h), new_interactions (e.g. 100000) or both: when to retrain")
	}
	if a.Poll == 0 {
		a.Poll = Duration(DefaultALSPoll)
	}
	if a.Factors == 0 {
		a.Factors = jobs.DefaultFactors
	}
	if a.Iterations == 0 {
		a.Iterations = jobs.DefaultIterations
	}
	if a.Alpha == 0 {
		a.Alpha = jobs.DefaultAlpha
	}
	if a.Lambda == 0 {
		a.Lambda = jobs.DefaultLambda
	}
	if a.Top == 0 {
		a.Top = 20
	}
	if a.Seed == 0 {
		a.Seed = 1
	}
	if a.Solver == "" {
		a.Solver = jobs.SolverCG
	}
	if a.CGSteps == 0 {
		a.CGSteps = jobs.DefaultCGSteps
	}
	if a.EvalUsers == 0 {
		a.EvalUsers = jobs.DefaultEvalUsers
	}
	if a.GateTolerance == nil {
		v := registry.DefaultGateTolerance
		a.GateTolerance = &v
	}
	if a.Weights == nil {
		a.Weights = map[string]float64{}
		for k, v := range jobs.DefaultWeights() {
			a.Weights[k] = float64(v)
		}
	}
	switch {
	case a.Poll < 0:
		return cfgErr(p+"poll", "must be positive")
	case a.Factors < 1 || a.Factors > 1024:
		return cfgErr(p+"factors", "%d: want 1 to 1024", a.Factors)
	case a.Iterations < 1:
		return cfgErr(p+"iterations", "%d: want at least 1", a.Iterations)
	case !(a.Alpha > 0) || math.IsInf(a.Alpha, 0):
		return cfgErr(p+"alpha", "%v: want a positive number", a.Alpha)
	case !(a.Lambda > 0) || math.IsInf(a.Lambda, 0):
		return cfgErr(p+"lambda", "%v: want a positive number", a.Lambda)
	case a.Top < 1:
		return cfgErr(p+"top", "%d: want at least 1", a.Top)
	case a.Solver != jobs.SolverCG && a.Solver != jobs.SolverCholesky:
		return cfgErr(p+"solver", "%q: want cg or cholesky", a.Solver)
	case a.CGSteps < 1:
		return cfgErr(p+"cg_steps", "%d: want at least 1", a.CGSteps)
	case a.EvalUsers < 1:
		return cfgErr(p+"eval_users", "%d: want at least 1", a.EvalUsers)
	case a.HalfLife < 0:
		return cfgErr(p+"half_life", "must be positive (or 0: no decay)")
	case math.IsNaN(*a.GateTolerance) || math.IsInf(*a.GateTolerance, 0):
		return cfgErr(p+"gate_tolerance", "want a number")
	}
	for k, v := range a.Weights {
		if !(v > 0) || math.IsInf(v, 0) {
			return cfgErr(p+"weights", "%s: %v: want a positive weight", k, v)
		}
	}
	return nil
}

func (t *TrendingConfig) resolve() error {
	const p = "jobs.trending."
	switch {
	case t.Follow && t.Every != 0:
		return cfgErr("jobs.trending", "give follow: true (continuous) or every (batch runs), not both")
	case !t.Follow && t.Every <= 0:
		return cfgErr("jobs.trending", "give follow: true (continuous) or every (batch runs, e.g. 15m)")
	}
	if t.Poll == 0 {
		t.Poll = Duration(DefaultTrendingPoll)
	}
	if t.Window == 0 {
		t.Window = Duration(trending.DefaultWindow)
	}
	if t.Origin == "" {
		t.Origin = trending.DefaultOrigin.Format(time.RFC3339)
	}
	if t.Lateness == nil {
		d := Duration(trending.DefaultLatenessFor(t.Window.D()))
		t.Lateness = &d
	}
	if t.Count == "" {
		t.Count = trending.CountUsers
	}
	if t.Threshold == 0 {
		t.Threshold = trending.DefaultThresholdFor(t.Window.D())
	}
	if t.MinCount == 0 {
		t.MinCount = trending.DefaultMinCount
	}
	if t.Top == 0 {
		t.Top = trending.DefaultTop
	}
	if _, err := time.Parse(time.RFC3339, t.Origin); err != nil {
		return cfgErr(p+"window_origin", "%q: want RFC 3339, e.g. 1970-01-05T00:00:00Z", t.Origin)
	}
	switch {
	case t.Poll < 0:
		return cfgErr(p+"poll", "must be positive")
	case time.Duration(t.Window) < time.Second:
		return cfgErr(p+"window", "%v: want at least 1s", t.Window)
	case *t.Lateness < 0:
		return cfgErr(p+"lateness", "must be 0 or more")
	case !(t.Threshold > 0) || math.IsInf(t.Threshold, 0):
		return cfgErr(p+"threshold", "%v: want a positive number", t.Threshold)
	case !(t.MinCount > 0) || math.IsInf(t.MinCount, 0):
		return cfgErr(p+"min_count", "%v: want a positive number", t.MinCount)
	case t.Top < 1:
		return cfgErr(p+"top", "%d: want at least 1", t.Top)
	case t.Count != trending.CountUsers && t.Count != trending.CountEvents && t.Count != trending.CountValue:
		return cfgErr(p+"count", "%q: want users, events or value", t.Count)
	}
	for k, v := range t.Weights {
		if !(v > 0) || math.IsInf(v, 0) {
			return cfgErr(p+"weights", "%s: %v: want a positive weight", k, v)
		}
	}
	return nil
}

// clone copies c deeply enough that resolving the copy leaves c alone.
func (c *Config) clone() *Config {
	r := *c
	r.Server.AllowedOrigins = slices.Clone(c.Server.AllowedOrigins)
	if c.Server.RateLimit != nil {
		v := *c.Server.RateLimit
		r.Server.RateLimit = &v
	}
	if a := c.Jobs.ALS; a != nil {
		cp := *a
		cp.Weights = cloneMap(a.Weights)
		if a.GateTolerance != nil {
			v := *a.GateTolerance
			cp.GateTolerance = &v
		}
		r.Jobs.ALS = &cp
	}
	if t := c.Jobs.Trending; t != nil {
		cp := *t
		cp.Weights = cloneMap(t.Weights)
		cp.Types = slices.Clone(t.Types)
		if t.Lateness != nil {
			v := *t.Lateness
			cp.Lateness = &v
		}
		r.Jobs.Trending = &cp
	}
	if o := c.Maintenance.Optimize; o != nil {
		cp := *o
		cp.ZOrderBy = slices.Clone(o.ZOrderBy)
		r.Maintenance.Optimize = &cp
	}
	if v := c.Maintenance.Vacuum; v != nil {
		cp := *v
		if v.Outputs != nil {
			b := *v.Outputs
			cp.Outputs = &b
		}
		if v.LogCleanup != nil {
			b := *v.LogCleanup
			cp.LogCleanup = &b
		}
		r.Maintenance.Vacuum = &cp
	}
	return &r
}

func cloneMap(m map[string]float64) map[string]float64 {
	if m == nil {
		return nil
	}
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Duration is a time.Duration written as a string: Go's forms plus d (days) and w (weeks),
// "0" for none ("30s", "6h", "1d", "2w").
type Duration time.Duration

// ParseDuration reads a Duration ("0", "30s", "1d").
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	d, err := jobs.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; want e.g. 30s, 90m, 6h, 1d or 2w", s)
	}
	return Duration(d), nil
}

// D is d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String renders d as ParseDuration reads it: "1d", "6h", "90m", "1h30m", "500ms".
func (d Duration) String() string {
	const day = 24 * time.Hour
	switch v := time.Duration(d); {
	case v == 0:
		return "0"
	case v%day == 0:
		return fmt.Sprintf("%dd", v/day)
	default:
		s := v.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return s
	}
}

// MarshalText renders d as String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a Duration (flags, JSON).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalYAML reads a Duration from a YAML scalar, naming its line on a mistake.
func (d *Duration) UnmarshalYAML(node ast.Node) error {
	s, ok, err := scalar(node)
	if err != nil || !ok {
		return err
	}
	v, perr := ParseDuration(s)
	if perr != nil {
		return nodeErr(node, perr.Error())
	}
	*d = v
	return nil
}

// Size is a number of bytes, written as a number or with a binary unit ("128MiB", "1g").
type Size int64

// UnmarshalText reads a Size.
func (s *Size) UnmarshalText(b []byte) error {
	n, err := compaction.ParseSize(string(b))
	if err != nil {
		return fmt.Errorf("%q: %v", b, err)
	}
	*s = Size(n)
	return nil
}

// UnmarshalYAML reads a Size from a YAML scalar, naming its line on a mistake.
func (s *Size) UnmarshalYAML(node ast.Node) error {
	str, ok, err := scalar(node)
	if err != nil || !ok {
		return err
	}
	n, perr := compaction.ParseSize(str)
	if perr != nil {
		return nodeErr(node, fmt.Sprintf("%q: want a positive number of bytes, optionally with a unit (128MiB, 1g)", str))
	}
	*s = Size(n)
	return nil
}

// scalar returns the text of a scalar node; ok is false for null.
func scalar(node ast.Node) (string, bool, error) {
	switch n := node.(type) {
	case *ast.NullNode:
		return "", false, nil
	case *ast.StringNode:
		return n.Value, true, nil
	case *ast.IntegerNode:
		return fmt.Sprint(n.Value), true, nil
	case *ast.FloatNode:
		return strconv.FormatFloat(n.Value, 'f', -1, 64), true, nil
	}
	return "", false, nodeErr(node, "want a single value")
}

func nodeErr(node ast.Node, msg string) error {
	e := &ConfigError{Msg: msg, Field: strings.TrimPrefix(node.GetPath(), "$.")}
	if tk := node.GetToken(); tk != nil && tk.Position != nil {
		e.Line = tk.Position.Line
	}
	return e
}
