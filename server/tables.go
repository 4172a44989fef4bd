package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lakehouse/lake/registry"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// GET /v1/tables: every table this server reads (the events table, its quarantine table, the
// output tables it serves and the model registry), each with its newest version and its last
// tablesHistory commits from the table's history (table.History). The answer is cached for
// tablesTTL.

const (
	tablesTTL     = 10 * time.Second
	tablesHistory = 10
)

// CommitSummary is one commit of a table's recent history.
type CommitSummary struct {
	Version   int64  `json:"version"`
	Timestamp string `json:"timestamp"` // RFC 3339
	Operation string `json:"operation"`
	// From the commit's operationMetrics, where present.
	Rows         *int64 `json:"rows,omitempty"`          // numOutputRows
	DeletedRows  *int64 `json:"deleted_rows,omitempty"`  // numDeletedRows
	FilesAdded   *int64 `json:"files_added,omitempty"`   // numAddedFiles, else numFiles
	FilesRemoved *int64 `json:"files_removed,omitempty"` // numRemovedFiles
	Summary      string `json:"summary"`                 // the same in words, e.g. "120 rows, +2 files"
}

// TableInfo is one table of GET /v1/tables.
type TableInfo struct {
	Name          string          `json:"name"` // events, quarantine, similar_items, ..., models
	URI           string          `json:"uri"`
	Version       *int64          `json:"version"`                  // the newest; null while it is not a table
	ServedVersion *int64          `json:"served_version,omitempty"` // an output table: the version this server serves
	Status        string          `json:"status,omitempty"`         // why there is no version
	History       []CommitSummary `json:"history"`                  // newest first
}

// TablesAnswer is the body of GET /v1/tables.
type TablesAnswer struct {
	GeneratedAt string      `json:"generated_at"`
	Tables      []TableInfo `json:"tables"`
}

type tablesCache struct {
	mu  sync.Mutex
	at  time.Time
	ans *TablesAnswer
}

// servedTables lists the tables this server reads, in the order the page shows them.
func (s *Server) servedTables() []TableInfo {
	var l []TableInfo
	if ev := s.eventsURI(); ev != "" {
		l = append(l, TableInfo{Name: "events", URI: ev})
	}
	if q, err := s.quarantineURI(); err == nil {
		l = append(l, TableInfo{Name: "quarantine", URI: q})
	}
	if o := s.opts.Reads; o != nil {
		served := o.Versions()
		for _, sl := range []struct{ name, uri string }{
			{o.similar.name, o.similar.uri}, {o.recs.name, o.recs.uri},
			{o.trending.name, o.trending.uri}, {o.popular.name, o.popular.uri},
		} {
			ti := TableInfo{Name: sl.name, URI: sl.uri}
			if v, ok := served[sl.name]; ok {
				ti.ServedVersion = &v
			}
			l = append(l, ti)
		}
		l = append(l, TableInfo{Name: registry.TableName, URI: registry.URI(o.Prefix())})
	}
	return l
}

func (d *dashboard) handleTables(w http.ResponseWriter, r *http.Request) {
	list := d.s.servedTables()
	if len(list) == 0 {
		writeError(w, http.StatusServiceUnavailable, "this server reads no tables: start it with `lake serve --table URI [--outputs PREFIX]`")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, d.tables.get(r.Context(), d.s, list))
}

func (c *tablesCache) get(ctx context.Context, s *Server, list []TableInfo) *TablesAnswer {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := s.opts.Now()
	if c.ans != nil && now.Sub(c.at) < tablesTTL && now.Sub(c.at) >= 0 && sameTables(c.ans.Tables, list) {
		// The served versions change with a swap, not with the cache.
		out := &TablesAnswer{GeneratedAt: c.ans.GeneratedAt, Tables: make([]TableInfo, len(list))}
		for i := range list {
			out.Tables[i] = c.ans.Tables[i]
			out.Tables[i].ServedVersion = list[i].ServedVersion
		}
		return out
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(3)
	for i := range list {
		g.Go(func() error {
			ti := &list[i]
			ti.History = []CommitSummary{}
			h, err := tableHistory(gctx, ti.URI)
			switch {
			case errors.Is(err, txlog.ErrNotATable):
				ti.Status = "not a table yet"
			case err != nil:
				s.opts.Logger.Warn("reading a table's history", "table", ti.URI, "err", err)
				ti.Status = "cannot read its history: " + err.Error()
			case len(h) > 0:
				v := h[0].Version
				ti.Version = &v
				for _, e := range h {
					ti.History = append(ti.History, summarize(e))
				}
			}
			return nil
		})
	}
	g.Wait()
	c.ans, c.at = &TablesAnswer{GeneratedAt: now.UTC().Format(time.RFC3339Nano), Tables: list}, now
	return c.ans
}

func sameTables(a, b []TableInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].URI != b[i].URI {
			return false
		}
	}
	return true
}

func tableHistory(ctx context.Context, uri string) ([]txlog.CommitEntry, error) {
	t, err := table.Open(ctx, uri, nil)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return t.History(ctx, tablesHistory)
}

// summarize turns a commit into its summary.
func summarize(e txlog.CommitEntry) CommitSummary {
	cs := CommitSummary{Version: e.Version, Timestamp: time.UnixMilli(e.Timestamp).UTC().Format(time.RFC3339Nano)}
	ci := e.CommitInfo
	if ci == nil {
		return cs
	}
	cs.Operation = ci.Operation
	m := ci.OperationMetrics
	opt := func(keys ...string) *int64 {
		for _, k := range keys {
			if n, ok := metricInt(m, k); ok {
				return &n
			}
		}
		return nil
	}
	cs.Rows = opt("numOutputRows")
	cs.DeletedRows = opt("numDeletedRows")
	cs.FilesAdded = opt("numAddedFiles", "numFiles")
	cs.FilesRemoved = opt("numRemovedFiles")
	var parts []string
	plural := func(n int64, one string) string {
		if n == 1 {
			return one
		}
		return one + "s"
	}
	if cs.Rows != nil {
		parts = append(parts, fmt.Sprintf("%d %s", *cs.Rows, plural(*cs.Rows, "row")))
	}
	if cs.DeletedRows != nil {
		parts = append(parts, fmt.Sprintf("%d %s deleted", *cs.DeletedRows, plural(*cs.DeletedRows, "row")))
	}
	if cs.FilesAdded != nil && *cs.FilesAdded > 0 {
		parts = append(parts, fmt.Sprintf("+%d %s", *cs.FilesAdded, plural(*cs.FilesAdded, "file")))
	}
	if cs.FilesRemoved != nil && *cs.FilesRemoved > 0 {
		parts = append(parts, fmt.Sprintf("−%d %s", *cs.FilesRemoved, plural(*cs.FilesRemoved, "file")))
	}
	cs.Summary = strings.Join(parts, ", ")
	return cs
}
