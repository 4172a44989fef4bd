// Package server is the HTTP side of `lake serve`: the collector that turns pixel hits and posted
// events into queue messages, the read APIs over the job outputs (similar items,
// recommendations, trending, popular: see reads.go and Outputs, which loads each output table
// into memory and swaps a new version in atomically; with a model registry, the versions it marks
// live), GET /v1/models (the registry), the dashboard at / (dashboard.go, health.go, tables.go),
// the abuse limits and the metrics. Package server/ops runs all of it, with the committer and
// the scheduled jobs, as one process (`lake serve [--config FILE]`).
//
// # Endpoints
//
//   - GET /p.gif?u=USER&i=ITEM&t=TYPE[&ts=EPOCH_MS][&v=VALUE][&p.KEY=VAL...]: 200 with a 1x1 GIF once
//     the event is in the queue. POST /p.gif takes the same query string (navigator.sendBeacon
//     posts) and answers 204. The pixel is public by design: no token.
//   - POST /v1/events: a JSON object, a JSON array of objects, or NDJSON, with the standard column
//     names (event_id, user_id, item_id, interaction_type, timestamp, value, properties, source);
//     timestamps are RFC 3339 strings or epoch milliseconds. With Options.WriteToken set, the
//     request must carry `Authorization: Bearer TOKEN`. 202 {"accepted": N} once every event is in
//     the queue. A request is all or nothing as far as validation goes: one malformed event
//     rejects the request with 400 and queues nothing.
//   - GET /pixel.js: the snippet a page includes (see the demo page at /demo/ with
//     Options.DemoSite).
//   - GET /healthz, GET /metrics (Prometheus text, from the server's own registry).
//   - Reads (open unless Options.ReadToken): GET /v1/items/{id}/similar, /v1/users/{id}/
//     recommendations, /v1/trending, /v1/popular, /v1/models; for the dashboard GET
//     /v1/trending/series?item=ID, /v1/ingest/health, /v1/tables, /v1/ops, and GET /v1/dashboard,
//     which answers 200 with each of those endpoints' status and body (browsers log every 4xx/5xx
//     answer as a console error, even one the page handles).
//   - GET / and /ui/{name}: the dashboard, embedded (no build step, no external URL; CSP 'self').
//
// # Events and the queue
//
// Each queue message is one event: a JSON object with the standard column names. The collector
// gives every event that lacks an event_id a UUIDv7 before publishing, so a message the queue
// redelivers keeps its id and the committer (package writer/stream) can drop the second copy;
// source defaults to "collector" and a missing timestamp to the time the request arrived. The
// message metadata "lake-received" holds the arrival time in epoch milliseconds (for queue-lag
// metrics). An event is acknowledged to the client only after the topic's Send returned, that
// is, once it is durable in the queue (for a durable queue such as RabbitMQ).
//
// The collector checks the shape of an event (an object; user_id, item_id and interaction_type
// non-empty strings; timestamp an RFC 3339 string or a number; value a number; properties an
// object of strings) and rejects what fails with 400. Everything else (a timestamp out of range,
// an event_date that disagrees with the timestamp) is the standardiser's to judge: such events
// are queued and land in the quarantine table.
//
// # Abuse
//
// Bodies are capped (Options.MaxBodyBytes, 413), each client IP has a token bucket (Options.RateLimit
// and RateBurst, 429 with Retry-After), CORS answers preflights for the pixel and the events
// endpoint, and nothing in a request can name a table, a path or a queue: those are fixed when
// the server is built. Errors are JSON: {"error": "..."} with a 4xx or 5xx status. The client IP
// is the connection's remote address; X-Forwarded-For is not trusted.
//
// # Concurrency
//
// A Server is safe for concurrent use by any number of requests. Serve runs an http.Server with
// explicit timeouts and shuts it down gracefully when its context ends.
package server
