package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/pubsub"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// WriteToken, when set, is required as `Authorization: Bearer TOKEN` on POST /v1/events.
	WriteToken string
	// MaxBodyBytes caps a request body (default 1 MiB); a larger body is refused with 413.
	MaxBodyBytes int64
	// MaxEvents caps the number of events in one POST (default 10,000).
	MaxEvents int
	// RateLimit is the sustained number of requests per second each client IP may make (default
	// 200); RateBurst is the bucket size (default 2 × RateLimit). A negative RateLimit turns
	// rate limiting off (load tests from one address).
	RateLimit float64
	RateBurst int
	// AllowedOrigins lists the origins CORS answers allow; empty allows any origin ("*").
	AllowedOrigins []string
	// DemoSite serves a small demo shop at /demo/ that includes /pixel.js.
	DemoSite bool
	// BeforeSend, if set, is given to every queue message (e.g. stream.BeforeSend, which marks
	// RabbitMQ messages persistent).
	BeforeSend func(asFunc func(any) bool) error
	// Source is the source of events that do not name one (default "collector").
	Source string
	// Metrics receives the collector's counters; nil makes a new set (see Server.Metrics).
	Metrics *Metrics
	// Logger gets one line per server-side failure; nil discards.
	Logger *slog.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// Reads, when set, serves the read APIs (GET /v1/items/{id}/similar, /v1/users/{id}/
	// recommendations, /v1/trending, /v1/popular) from these job outputs; the caller runs its
	// Run loop. Without it those endpoints answer 503.
	Reads *Outputs
	// ReadToken, when set, is required as `Authorization: Bearer TOKEN` on the read APIs.
	ReadToken string
	// MaxK caps the k of a read (default 100).
	MaxK int
	// Models, when set, returns the model registry GET /v1/models answers with (a value that
	// marshals to a JSON object); without it that endpoint answers 503.
	Models func(ctx context.Context) (any, error)
	// EventsTable is the URI of the table the collector's events are committed to, for the
	// dashboard's GET /v1/ingest/health and GET /v1/tables; empty: Reads' events table
	// (OutputsOptions.Events), if any.
	EventsTable string
	// QuarantineTable is the events table's quarantine table; empty: the sibling table
	// EVENTS_quarantine.
	QuarantineTable string
	// QueueLag, when set, reports the committer's queue lag (how long the oldest event of its
	// last batch had waited) for GET /v1/ingest/health; ok is false when it is not known yet.
	QueueLag func() (lag time.Duration, ok bool)
	// Ops, when set, returns the scheduled jobs GET /v1/ops answers with (a value that marshals
	// to JSON); without it that endpoint answers 503.
	Ops func(ctx context.Context) (any, error)
}

func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	c.AllowedOrigins = append([]string(nil), c.AllowedOrigins...)
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxBodyBytes < 0 {
		return c, errors.New("server: MaxBodyBytes must be positive")
	}
	if c.MaxEvents == 0 {
		c.MaxEvents = 10000
	}
	if c.MaxEvents < 0 {
		return c, errors.New("server: MaxEvents must be positive")
	}
	if c.RateLimit == 0 {
		c.RateLimit = 200
	}
	if c.RateBurst == 0 {
		c.RateBurst = int(2 * c.RateLimit)
	}
	if c.RateLimit > 0 && c.RateBurst < 1 {
		return c, errors.New("server: RateBurst must be at least 1")
	}
	if c.Source == "" {
		c.Source = "collector"
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxK == 0 {
		c.MaxK = 100
	}
	if c.MaxK < 0 {
		return c, errors.New("server: MaxK must be positive")
	}
	return c, nil
}

// Sender is where the collector queues events: a *pubsub.Topic, or several behind one Send (see
// stream.Queue.Sender). Send returns once the message is in the queue.
type Sender interface {
	Send(ctx context.Context, m *pubsub.Message) error
}

// Server is the collector: an http.Handler that queues events on a topic.
type Server struct {
	topic   Sender
	opts    Options
	limiter *ipLimiter
	mux     *http.ServeMux
}

// New returns a collector that publishes to topic. The caller keeps ownership of the topic and
// shuts it down after the HTTP server has stopped (so in-flight requests can finish sending).
func New(topic Sender, opts *Options) (*Server, error) {
	if topic == nil {
		return nil, errors.New("server: a topic is required")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{topic: topic, opts: o, mux: http.NewServeMux()}
	if o.RateLimit > 0 {
		s.limiter = newIPLimiter(o.RateLimit, o.RateBurst, o.Now)
	}
	s.routes()
	return s, nil
}

// Metrics returns the server's metrics (the ones given in Options, or its own).
func (s *Server) Metrics() *Metrics { return s.opts.Metrics }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) routes() {
	s.mux.HandleFunc("GET /p.gif", s.limited(s.cors(s.handlePixel)))
	s.mux.HandleFunc("POST /p.gif", s.limited(s.cors(s.handlePixel)))
	s.mux.HandleFunc("OPTIONS /p.gif", s.cors(s.handlePreflight))
	s.mux.HandleFunc("POST /v1/events", s.limited(s.cors(s.handleEvents)))
	s.mux.HandleFunc("OPTIONS /v1/events", s.cors(s.handlePreflight))
	s.mux.HandleFunc("GET /pixel.js", s.handlePixelJS)
	s.mux.HandleFunc("GET /v1/items/{id}/similar", s.limited(s.reads(s.handleSimilar)))
	s.mux.HandleFunc("GET /v1/users/{id}/recommendations", s.limited(s.reads(s.handleRecs)))
	s.mux.HandleFunc("GET /v1/trending", s.limited(s.reads(s.handleTrending)))
	s.mux.HandleFunc("GET /v1/popular", s.limited(s.reads(s.handlePopular)))
	s.mux.HandleFunc("GET /v1/models", s.limited(s.metered(s.handleModels)))
	s.dashboardRoutes() // GET /, /ui/, /v1/dashboard, /v1/trending/series, /v1/ingest/health, /v1/tables, /v1/ops
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux.Handle("GET /metrics", s.opts.Metrics.Handler())
	if s.opts.DemoSite {
		s.mux.HandleFunc("GET /demo/{$}", s.handleDemo)
		s.mux.HandleFunc("GET /demo", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/demo/", http.StatusMovedPermanently)
		})
	}
	for path, allow := range map[string]string{"/p.gif": "GET, POST, OPTIONS", "/v1/events": "POST, OPTIONS"} {
		s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+path+"; use "+allow)
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
}

// writeError answers {"error": msg} with status.
func writeError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Write(append(b, '\n'))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(v)
	w.Write(append(b, '\n'))
}

// clientIP is the remote address's host; proxies' headers are not trusted.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) limited(h http.HandlerFunc) http.HandlerFunc {
	if s.limiter == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := s.limiter.allow(clientIP(r)); !ok {
			s.opts.Metrics.rejected("rate_limited", 1)
			secs := int(wait/time.Second) + 1
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, http.StatusTooManyRequests, "too many requests from this address; retry after "+strconv.Itoa(secs)+" s")
			return
		}
		h(w, r)
	}
}

// cors sets the CORS headers of the pixel and events endpoints.
func (s *Server) cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		hd := w.Header()
		if origin != "" {
			switch {
			case len(s.opts.AllowedOrigins) == 0:
				hd.Set("Access-Control-Allow-Origin", "*")
			case originAllowed(s.opts.AllowedOrigins, origin):
				hd.Set("Access-Control-Allow-Origin", origin)
				hd.Add("Vary", "Origin")
			default:
				if r.Method == http.MethodOptions {
					writeError(w, http.StatusForbidden, "origin "+origin+" is not allowed")
					return
				}
			}
		}
		h(w, r)
	}
}

func originAllowed(list []string, origin string) bool {
	for _, o := range list {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

func (s *Server) handlePreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// authorized reports whether r carries the write token (always true without one).
func (s *Server) authorized(r *http.Request) bool {
	if s.opts.WriteToken == "" {
		return true
	}
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.opts.WriteToken)) == 1
}

// publish sends the messages and returns when all are in the queue or one failed.
func (s *Server) publish(ctx context.Context, msgs [][]byte, received time.Time) error {
	md := map[string]string{receivedKey: strconv.FormatInt(received.UnixMilli(), 10)}
	if len(msgs) == 1 {
		return s.topic.Send(ctx, &pubsub.Message{Body: msgs[0], Metadata: md, BeforeSend: s.opts.BeforeSend})
	}
	// Concurrent Sends share the topic's batches (one round trip for many events).
	errc := make(chan error, len(msgs))
	sem := make(chan struct{}, 512)
	for _, b := range msgs {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errc <- s.topic.Send(ctx, &pubsub.Message{Body: b, Metadata: md, BeforeSend: s.opts.BeforeSend})
		}()
	}
	var first error
	for range msgs {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// receivedKey is the message metadata key holding the arrival time in epoch milliseconds.
const receivedKey = "lake-received"

// ReceivedKey is the metadata key of a queue message that holds the time the collector received
// the event, in epoch milliseconds.
const ReceivedKey = receivedKey
