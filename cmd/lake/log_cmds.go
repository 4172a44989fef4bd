package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

func init() {
	register(&command{name: "version", summary: "print the engine's version", run: runVersion})
	register(&command{name: "create", summary: "create a table", run: runCreate})
	register(&command{name: "history", summary: "list a table's commits, newest first", run: runHistory})
	register(&command{name: "describe", summary: "show a snapshot's protocol, schema, properties and size", run: runDescribe})
	register(&command{name: "files", summary: "list a snapshot's active data files", run: runFiles})
	register(&command{name: "checkpoint", summary: "write a checkpoint of the latest version", run: runCheckpoint})
}

func runVersion(ctx context.Context, e *env, args []string) error {
	fs := newFlags("version", "", e)
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "lake %s (Delta reader %d, writer %d)\n", table.EngineVersion, txlog.MaxReaderVersion, txlog.MaxWriterVersion)
	return nil
}

func runCreate(ctx context.Context, e *env, args []string) error {
	fs := newFlags("create", "URI [--schema interactions | --schema-json FILE] [--partition-by COL,...] [--property KEY=VALUE]...", e)
	schemaName := fs.String("schema", "", "a named schema: interactions")
	schemaJSON := fs.String("schema-json", "", "a file holding a Delta schema (schemaString JSON)")
	partBy := &listFlag{split: true}
	fs.Var(partBy, "partition-by", "partition columns, comma-separated")
	props := &listFlag{}
	fs.Var(props, "property", "a table property KEY=VALUE (repeatable)")
	name := fs.String("name", "", "the table's name")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	var schema *txlog.StructType
	parts := partBy.vals
	switch {
	case *schemaName != "" && *schemaJSON != "":
		return usagef("give --schema or --schema-json, not both")
	case *schemaName == "interactions":
		schema = table.InteractionSchema()
		if parts == nil {
			parts = []string{table.InteractionPartitionColumn}
		}
	case *schemaName != "":
		return usagef("unknown schema %q; the named schemas are: interactions", *schemaName)
	case *schemaJSON != "":
		data, err := os.ReadFile(*schemaJSON)
		if err != nil {
			return usagef("read --schema-json: %v", err)
		}
		schema, err = txlog.ParseSchema(string(data))
		if err != nil {
			return usagef("--schema-json %s: %v", *schemaJSON, err)
		}
	default:
		return usagef("give the table's schema: --schema interactions or --schema-json FILE")
	}
	properties := map[string]string{}
	for _, p := range props.vals {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return usagef("--property %q: want KEY=VALUE", p)
		}
		if _, dup := properties[k]; dup {
			return usagef("--property %s is given twice; give each property once", k)
		}
		properties[k] = v
	}
	t, err := table.Create(ctx, pos[0], schema, &table.CreateOptions{PartitionColumns: parts, Properties: properties, Name: *name})
	if err != nil {
		var oe *table.OptionError
		if errors.As(err, &oe) {
			return usagef("%v", oe)
		}
		return err
	}
	defer t.Close()
	fmt.Fprintf(e.stdout, "created %s at version 0\n", t.URI())
	return nil
}

func openTable(ctx context.Context, uri string) (*table.Table, error) {
	return table.Open(ctx, uri, nil)
}

// snapshotFlags adds --version and --timestamp and loads the snapshot they select.
type snapshotFlags struct {
	version   *nonNegFlag
	timestamp *string
}

func addSnapshotFlags(fs *flag.FlagSet, withTimestamp bool) *snapshotFlags {
	s := &snapshotFlags{version: &nonNegFlag{want: "versions start at 0 (`lake history URI` lists a table's versions)"}}
	fs.Var(s.version, "version", "read version `N`, from 0 (default: the latest)")
	if withTimestamp {
		s.timestamp = fs.String("timestamp", "", "read the version current at this RFC 3339 time")
	}
	return s
}

func (s *snapshotFlags) load(ctx context.Context, t *table.Table) (*txlog.Snapshot, error) {
	if s.timestamp != nil && *s.timestamp != "" {
		if s.version.set {
			return nil, usagef("give --version or --timestamp, not both")
		}
		ts, err := parseTime(*s.timestamp)
		if err != nil {
			return nil, usagef("--timestamp %q: want RFC 3339, e.g. 2024-01-02T03:04:05Z", *s.timestamp)
		}
		return t.SnapshotAsOf(ctx, ts)
	}
	if s.version.set {
		return t.SnapshotAt(ctx, s.version.n)
	}
	return t.Snapshot(ctx)
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q", s)
}

func runFiles(ctx context.Context, e *env, args []string) error {
	fs := newFlags("files", "URI [--version N | --timestamp RFC3339]", e)
	sf := addSnapshotFlags(fs, true)
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	t, err := openTable(ctx, pos[0])
	if err != nil {
		return err
	}
	defer t.Close()
	snap, err := sf.load(ctx, t)
	if err != nil {
		return err
	}
	w := newBufWriter(e.stdout)
	for _, a := range snap.Files() {
		w.WriteString(a.Path)
		w.WriteByte('\n')
	}
	return w.Flush()
}

func runHistory(ctx context.Context, e *env, args []string) error {
	fs := newFlags("history", "URI [--format jsonl|table] [--limit N]", e)
	format := fs.String("format", "table", "jsonl or table")
	limit := &nonNegFlag{want: "--limit takes 0 (all commits) or a positive number of commits"}
	fs.Var(limit, "limit", "show at most `N` commits (0: all)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *format != "jsonl" && *format != "table" {
		return usagef("--format %q: want jsonl or table", *format)
	}
	t, err := openTable(ctx, pos[0])
	if err != nil {
		return err
	}
	defer t.Close()
	hist, err := t.History(ctx, int(min(limit.n, math.MaxInt32)))
	if err != nil {
		return err
	}
	w := newBufWriter(e.stdout)
	if *format == "jsonl" {
		for _, h := range hist {
			b, err := json.Marshal(historyRow(h))
			if err != nil {
				return err
			}
			w.Write(append(b, '\n'))
		}
		return w.Flush()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tTIMESTAMP\tOPERATION\tPARAMETERS\tENGINE")
	for _, h := range hist {
		params, _ := json.Marshal(h.CommitInfo.OperationParameters)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", h.Version, time.UnixMilli(h.Timestamp).UTC().Format(time.RFC3339),
			h.CommitInfo.Operation, params, h.CommitInfo.EngineInfo)
	}
	tw.Flush()
	return w.Flush()
}

// historyRow is one history entry with commitInfo's fields as in the Delta log.
func historyRow(h txlog.CommitEntry) map[string]any {
	ci := h.CommitInfo
	row := map[string]any{}
	for k, v := range ci.Extra {
		row[k] = v
	}
	row["version"] = h.Version
	row["timestamp"] = h.Timestamp
	row["operation"] = ci.Operation
	row["operationParameters"] = orEmpty(ci.OperationParameters)
	row["operationMetrics"] = orEmpty(ci.OperationMetrics)
	row["engineInfo"] = ci.EngineInfo
	if ci.ReadVersion != nil {
		row["readVersion"] = *ci.ReadVersion
	}
	if ci.IsolationLevel != "" {
		row["isolationLevel"] = ci.IsolationLevel
	}
	if ci.IsBlindAppend != nil {
		row["isBlindAppend"] = *ci.IsBlindAppend
	}
	if ci.InCommitTimestamp != nil {
		row["inCommitTimestamp"] = *ci.InCommitTimestamp
	}
	if ci.UserMetadata != "" {
		row["userMetadata"] = ci.UserMetadata
	}
	if ci.TxnID != "" {
		row["txnId"] = ci.TxnID
	}
	return row
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// describeInfo is what `lake describe` reports.
type describeInfo struct {
	Version          int64             `json:"version"`
	Timestamp        int64             `json:"timestamp"`
	Protocol         txlog.Protocol    `json:"protocol"`
	ID               string            `json:"id"`
	Name             *string           `json:"name,omitempty"`
	Description      *string           `json:"description,omitempty"`
	Schema           json.RawMessage   `json:"schema"`
	SchemaString     string            `json:"schemaString"`
	PartitionColumns []string          `json:"partitionColumns"`
	Configuration    map[string]string `json:"configuration"`
	CreatedTime      *int64            `json:"createdTime,omitempty"`
	NumFiles         int               `json:"numFiles"`
	NumRecords       *int64            `json:"numRecords"`
	SizeInBytes      int64             `json:"sizeInBytes"`
}

func describe(snap *txlog.Snapshot) *describeInfo {
	md := snap.Metadata()
	d := &describeInfo{
		Version: snap.Version(), Timestamp: snap.Timestamp().UnixMilli(), Protocol: snap.Protocol(),
		ID: md.ID, Name: md.Name, Description: md.Description, Schema: json.RawMessage(snap.Schema().String()),
		SchemaString: md.SchemaString, PartitionColumns: md.PartitionColumns, Configuration: md.Configuration,
		CreatedTime: md.CreatedTime, NumFiles: snap.NumFiles(),
	}
	if d.PartitionColumns == nil {
		d.PartitionColumns = []string{}
	}
	var records int64
	known := true
	snap.ScanFiles(func(a *txlog.Add) bool { // nothing kept: no per-file allocation
		d.SizeInBytes += a.Size
		if n, ok := a.LiveRecords(); ok {
			records += n
		} else {
			known = false
		}
		return true
	})
	if known {
		d.NumRecords = &records
	}
	return d
}

func runDescribe(ctx context.Context, e *env, args []string) error {
	fs := newFlags("describe", "URI [--version N] [--format json|text]", e)
	sf := addSnapshotFlags(fs, true)
	format := fs.String("format", "text", "json or text")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *format != "json" && *format != "text" {
		return usagef("--format %q: want json or text", *format)
	}
	t, err := openTable(ctx, pos[0])
	if err != nil {
		return err
	}
	defer t.Close()
	snap, err := sf.load(ctx, t)
	if err != nil {
		return err
	}
	d := describe(snap)
	if *format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	w := newBufWriter(e.stdout)
	fmt.Fprintf(w, "table:      %s\n", t.URI())
	fmt.Fprintf(w, "version:    %d (%s)\n", d.Version, time.UnixMilli(d.Timestamp).UTC().Format(time.RFC3339))
	p := d.Protocol
	fmt.Fprintf(w, "protocol:   reader %d, writer %d", p.MinReaderVersion, p.MinWriterVersion)
	if len(p.ReaderFeatures)+len(p.WriterFeatures) > 0 {
		fmt.Fprintf(w, " (reader features %v, writer features %v)", p.ReaderFeatures, p.WriterFeatures)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "id:         %s\n", d.ID)
	fmt.Fprintf(w, "partitions: %s\n", strings.Join(d.PartitionColumns, ", "))
	records := "unknown (files without statistics)"
	if d.NumRecords != nil {
		records = strconv.FormatInt(*d.NumRecords, 10)
	}
	fmt.Fprintf(w, "files:      %d\nrecords:    %s\nbytes:      %d\n", d.NumFiles, records, d.SizeInBytes)
	fmt.Fprintln(w, "schema:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range snap.Schema().Fields {
		null := "not null"
		if f.Nullable {
			null = "nullable"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Name, typeString(f.Type), null)
	}
	tw.Flush()
	if len(d.Configuration) > 0 {
		fmt.Fprintln(w, "properties:")
		keys := make([]string, 0, len(d.Configuration))
		for k := range d.Configuration {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s=%s\n", k, d.Configuration[k])
		}
	}
	return w.Flush()
}

func typeString(t txlog.DataType) string { return txlog.TypeString(t) }

func runCheckpoint(ctx context.Context, e *env, args []string) error {
	fs := newFlags("checkpoint", "URI", e)
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	t, err := openTable(ctx, pos[0])
	if err != nil {
		return err
	}
	defer t.Close()
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return err
	}
	res, err := t.Log().Checkpoint(ctx, snap)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "checkpoint at version %d: %s (%d actions, %d bytes)\n", res.Version, res.Path, res.Actions, res.Bytes)
	return nil
}
