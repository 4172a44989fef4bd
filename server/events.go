package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// gif1x1 is a transparent 1x1 GIF.
var gif1x1 = []byte{
	0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
}

// maxFieldLen bounds a string field of an event (ids, types): longer is a client error.
const maxFieldLen = 1024

// event is one event as queued: the standard column names.
type event struct {
	EventID         string            `json:"event_id"`
	UserID          string            `json:"user_id"`
	ItemID          string            `json:"item_id"`
	InteractionType string            `json:"interaction_type"`
	Timestamp       json.RawMessage   `json:"timestamp"`
	Value           *float64          `json:"value,omitempty"`
	Properties      map[string]string `json:"properties,omitempty"`
	Source          string            `json:"source"`
	// Extra holds keys other than the standard ones (e.g. event_date); they are passed through
	// for the standardiser to judge.
	Extra map[string]json.RawMessage `json:"-"`
}

func (e *event) marshal() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil || len(e.Extra) == 0 {
		return b, err
	}
	m := make(map[string]json.RawMessage, len(e.Extra)+8)
	for k, v := range e.Extra {
		m[k] = v
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// fillDefaults gives the event an id, a source and a timestamp when it has none.
func (s *Server) fillDefaults(e *event, received time.Time) error {
	if e.EventID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		e.EventID = id.String()
	}
	if e.Source == "" {
		e.Source = s.opts.Source
	}
	if len(e.Timestamp) == 0 || string(e.Timestamp) == "null" {
		e.Timestamp = json.RawMessage(strconv.Quote(received.UTC().Format(time.RFC3339Nano)))
	}
	return nil
}

func checkString(name, v string, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return fmt.Errorf("%s is missing or empty", name)
	}
	if len(v) > maxFieldLen {
		return fmt.Errorf("%s is longer than %d bytes", name, maxFieldLen)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not valid UTF-8", name)
	}
	return nil
}

// validate checks the event's shape (see the package comment for what is left to the
// standardiser).
func (e *event) validate() error {
	if err := checkString("event_id", e.EventID, false); err != nil {
		return err
	}
	if err := checkString("user_id", e.UserID, true); err != nil {
		return err
	}
	if err := checkString("item_id", e.ItemID, true); err != nil {
		return err
	}
	if err := checkString("interaction_type", e.InteractionType, true); err != nil {
		return err
	}
	if err := checkString("source", e.Source, false); err != nil {
		return err
	}
	if len(e.Timestamp) > 0 && string(e.Timestamp) != "null" {
		switch e.Timestamp[0] {
		case '"':
			var s string
			if err := json.Unmarshal(e.Timestamp, &s); err != nil {
				return fmt.Errorf("timestamp: %v", err)
			}
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				return fmt.Errorf("timestamp %q is not RFC 3339 (e.g. 2024-01-02T03:04:05Z) or epoch milliseconds", s)
			}
		default:
			var n float64
			if err := json.Unmarshal(e.Timestamp, &n); err != nil || n != math.Trunc(n) {
				return fmt.Errorf("timestamp %s is not RFC 3339 or a whole number of epoch milliseconds", e.Timestamp)
			}
		}
	}
	if e.Value != nil && (math.IsNaN(*e.Value) || math.IsInf(*e.Value, 0)) {
		return errors.New("value is not a finite number")
	}
	return nil
}

// standardKeys are the keys decoded into the event's fields.
var standardKeys = map[string]bool{
	"event_id": true, "user_id": true, "item_id": true, "interaction_type": true,
	"timestamp": true, "value": true, "properties": true, "source": true,
}

// decodeEvent decodes one JSON object into an event.
func decodeEvent(raw json.RawMessage) (*event, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("not valid JSON: %v", err)
		}
		return nil, errors.New("not a JSON object")
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	e := &event{}
	for k, v := range m {
		if !standardKeys[k] {
			if e.Extra == nil {
				e.Extra = map[string]json.RawMessage{}
			}
			e.Extra[k] = v
			continue
		}
		if string(v) == "null" {
			continue
		}
		var err error
		switch k {
		case "event_id":
			err = json.Unmarshal(v, &e.EventID)
		case "user_id":
			err = json.Unmarshal(v, &e.UserID)
		case "item_id":
			err = json.Unmarshal(v, &e.ItemID)
		case "interaction_type":
			err = json.Unmarshal(v, &e.InteractionType)
		case "source":
			err = json.Unmarshal(v, &e.Source)
		case "timestamp":
			e.Timestamp = v
		case "value":
			var f float64
			err = json.Unmarshal(v, &f)
			e.Value = &f
		case "properties":
			err = json.Unmarshal(v, &e.Properties)
		}
		if err != nil {
			what := "a string"
			switch k {
			case "value":
				what = "a number"
			case "properties":
				what = "an object of strings"
			}
			return nil, fmt.Errorf("%s must be %s", k, what)
		}
	}
	return e, e.validate()
}

// handlePixel queues the event of a pixel hit (GET) or a beacon (POST, same query string).
func (s *Server) handlePixel(w http.ResponseWriter, r *http.Request) {
	received := s.opts.Now()
	if r.Method == http.MethodPost && r.Body != nil {
		// sendBeacon may post a small body; the event is in the query string.
		io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 64<<10))
	}
	q := r.URL.Query()
	e := &event{UserID: q.Get("u"), ItemID: q.Get("i"), InteractionType: q.Get("t"), EventID: q.Get("id")}
	if ts := q.Get("ts"); ts != "" {
		n, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			s.opts.Metrics.rejected("bad_event", 1)
			writeError(w, http.StatusBadRequest, fmt.Sprintf("ts %q: want epoch milliseconds", ts))
			return
		}
		e.Timestamp = json.RawMessage(strconv.FormatInt(n, 10))
	}
	if v := q.Get("v"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			s.opts.Metrics.rejected("bad_event", 1)
			writeError(w, http.StatusBadRequest, fmt.Sprintf("v %q: want a number", v))
			return
		}
		e.Value = &f
	}
	for k, vs := range q {
		if p, ok := strings.CutPrefix(k, "p."); ok && p != "" && len(vs) > 0 {
			if e.Properties == nil {
				e.Properties = map[string]string{}
			}
			e.Properties[p] = vs[0]
		}
	}
	if err := e.validate(); err != nil {
		s.opts.Metrics.rejected("bad_event", 1)
		writeError(w, http.StatusBadRequest, pixelHint(err))
		return
	}
	if err := s.fillDefaults(e, received); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	body, err := e.marshal()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if err := s.publish(r.Context(), [][]byte{body}, received); err != nil {
		s.queueFailed(w, err, 1)
		return
	}
	s.opts.Metrics.accepted(1)
	h := w.Header()
	h.Set("Cache-Control", "no-store, max-age=0")
	if r.Method == http.MethodPost {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.Set("Content-Type", "image/gif")
	h.Set("Content-Length", strconv.Itoa(len(gif1x1)))
	w.Write(gif1x1)
}

func pixelHint(err error) string {
	msg := err.Error()
	r := strings.NewReplacer("user_id", "u (user_id)", "item_id", "i (item_id)", "interaction_type", "t (interaction_type)")
	return r.Replace(msg) + "; the pixel takes /p.gif?u=USER&i=ITEM&t=TYPE[&ts=EPOCH_MS]"
}

func (s *Server) queueFailed(w http.ResponseWriter, err error, n int) {
	s.opts.Metrics.rejected("queue_unavailable", n)
	s.opts.Logger.Error("queue send failed", "err", err)
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "the event queue is unavailable; retry later (events that carry an event_id are never stored twice)")
}

// handleEvents queues posted events: a JSON object, a JSON array of objects, or NDJSON.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	received := s.opts.Now()
	if !s.authorized(r) {
		s.opts.Metrics.rejected("unauthorized", 1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="lake"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong write token: send Authorization: Bearer TOKEN")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.opts.Metrics.rejected("too_large", 1)
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes; send fewer events per request", s.opts.MaxBodyBytes))
			return
		}
		s.opts.Metrics.rejected("bad_body", 1)
		writeError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	raws, err := splitEvents(body, s.opts.MaxEvents)
	if err != nil {
		s.opts.Metrics.rejected("bad_body", 1)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(raws) == 0 {
		s.opts.Metrics.rejected("bad_body", 1)
		writeError(w, http.StatusBadRequest, "no events in the body: send a JSON object, a JSON array of objects, or NDJSON")
		return
	}
	msgs := make([][]byte, len(raws))
	for i, raw := range raws {
		e, err := decodeEvent(raw)
		if err != nil {
			s.opts.Metrics.rejected("bad_event", len(raws))
			msg := err.Error()
			if len(raws) > 1 {
				msg = fmt.Sprintf("event %d: %s; nothing was queued", i, msg)
			}
			writeError(w, http.StatusBadRequest, msg)
			return
		}
		if err := s.fillDefaults(e, received); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if msgs[i], err = e.marshal(); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	if err := s.publish(r.Context(), msgs, received); err != nil {
		s.queueFailed(w, err, len(msgs))
		return
	}
	s.opts.Metrics.accepted(len(msgs))
	writeJSON(w, http.StatusAccepted, map[string]int{"accepted": len(msgs)})
}

// splitEvents splits a body into its events: one object, an array of objects, or NDJSON.
func splitEvents(body []byte, max int) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if !utf8.Valid(trimmed) {
		return nil, errors.New("the body is not valid UTF-8")
	}
	tooMany := fmt.Errorf("more than %d events in one request; split them", max)
	if trimmed[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(trimmed, &arr); err != nil {
			return nil, fmt.Errorf("the body is not a valid JSON array: %v", err)
		}
		if len(arr) > max {
			return nil, tooMany
		}
		return arr, nil
	}
	// One object or NDJSON: a stream of values, each of which must be an object.
	var out []json.RawMessage
	sc := bufio.NewScanner(bytes.NewReader(trimmed))
	sc.Buffer(make([]byte, 0, 64<<10), len(trimmed)+1)
	line := 0
	single := json.Valid(trimmed)
	if single {
		return []json.RawMessage{trimmed}, nil
	}
	for sc.Scan() {
		line++
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		if !json.Valid(l) {
			return nil, fmt.Errorf("line %d is not valid JSON (send a JSON object, a JSON array, or one object per line)", line)
		}
		out = append(out, json.RawMessage(bytes.Clone(l)))
		if len(out) > max {
			return nil, tooMany
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
