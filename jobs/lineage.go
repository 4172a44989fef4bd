package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/lakehouse/lake/internal/deltaarrow"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

// AppID is the txn appId of a job's output: the job, the output's name and a hash of the
// parameters that determine the output (canonical JSON: sorted keys), e.g.
// "lake-als/item_factors/3f2a9c01b7d4".
func AppID(job, output string, params map[string]any) string {
	b, _ := json.Marshal(params) // maps marshal with sorted keys
	h := sha256.Sum256(b)
	return "lake-" + job + "/" + output + "/" + hex.EncodeToString(h[:6])
}

// Lineage is what a job's commit records in commitInfo.operationParameters, as strings (Delta's
// convention): job, source, sourceVersion, sourceRows, parameters (JSON), metrics (JSON),
// runSeconds, engineVersion, appId, forced.
type Lineage struct {
	Job           string
	Source        string
	SourceVersion int64
	SourceRows    int64
	Parameters    map[string]any
	Metrics       map[string]any
	RunSeconds    float64
}

func (l *Lineage) operationParameters(appID string, forced, txn bool) map[string]any {
	params, _ := json.Marshal(l.Parameters)
	metrics, _ := json.Marshal(l.Metrics)
	return map[string]any{
		"job":           l.Job,
		"source":        l.Source,
		"sourceVersion": strconv.FormatInt(l.SourceVersion, 10),
		"sourceRows":    strconv.FormatInt(l.SourceRows, 10),
		"parameters":    string(params),
		"metrics":       string(metrics),
		"runSeconds":    strconv.FormatFloat(l.RunSeconds, 'f', 3, 64),
		"engineVersion": table.EngineVersion,
		"appId":         appID,
		"forced":        strconv.FormatBool(forced),
		"txn":           strconv.FormatBool(txn),
	}
}

// OutputResult is what happened to one output table.
type OutputResult struct {
	Name    string `json:"name"`
	URI     string `json:"uri"`
	Version int64  `json:"version"` // the output table's version after the run
	Rows    int64  `json:"rows"`
	Skipped bool   `json:"skipped"` // already built from this source version with these parameters
}

// outputState is whether an output is already built: recorded is the source version the txn
// for appID holds (-1 when none).
func outputState(ctx context.Context, uri, appID string) (recorded int64, err error) {
	t, err := table.Open(ctx, uri, nil)
	if errors.Is(err, txlog.ErrNotATable) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	defer t.Close()
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return -1, err
	}
	if v, ok := snap.AppTransactionVersion(appID); ok {
		return v, nil
	}
	return -1, nil
}

// output is one table a job writes.
type output struct {
	name    string
	schema  *txlog.StructType
	rows    int64
	records func(alloc memory.Allocator, schema *arrow.Schema, yield func(arrow.RecordBatch) error) error
}

// commitOutput replaces the table at uri (created when missing) with out's rows in one commit
// carrying the lineage and, normally, txn{appID, sourceVersion}.
//
// The txn says "appID has built this output from source version V". Writing it must keep that
// true and keep later skips right, so:
//   - nothing recorded, or an older source version: commit with the txn (the normal case);
//   - this source version recorded: skip, unless forced; a forced run commits without a txn
//     (the recorded one is still true: same parameters, same source version) and its lineage
//     says forced=true;
//   - a newer source version recorded (the user rebuilt from an older version on purpose): commit
//     without a txn, so the next run on the newer version is still skipped rightly.
//
// A txn version above the source version, or a fresh appId per forced run, would both make the
// txn lie about which source version the parameters were last built from.
func commitOutput(ctx context.Context, uri string, out *output, lin *Lineage, appID string, force bool) (OutputResult, error) {
	res := OutputResult{Name: out.name, URI: uri}
	t, err := table.Open(ctx, uri, nil)
	if errors.Is(err, txlog.ErrNotATable) {
		t, err = table.Create(ctx, uri, out.schema, &table.CreateOptions{Name: out.name,
			Description: "output of lake " + lin.Job})
	}
	if err != nil {
		return res, err
	}
	defer t.Close()
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return res, err
	}
	recorded, has := snap.AppTransactionVersion(appID)
	if has && recorded == lin.SourceVersion && !force {
		res.Version, res.Skipped = snap.Version(), true
		return res, nil
	}
	useTxn := !has || recorded < lin.SourceVersion
	opts := &writer.Options{Mode: writer.Overwrite, Snapshot: snap,
		OperationParameters: lin.operationParameters(appID, force, useTxn)}
	if useTxn {
		opts.AppID, opts.AppVersion = appID, lin.SourceVersion
	}
	w, err := writer.New(ctx, t, opts)
	if err != nil {
		return res, err
	}
	schema, err := deltaarrow.Schema(out.schema)
	if err != nil {
		w.Abort(context.WithoutCancel(ctx))
		return res, err
	}
	err = out.records(memory.DefaultAllocator, schema, func(rec arrow.RecordBatch) error { return w.Write(ctx, rec) })
	if err != nil {
		w.Abort(context.WithoutCancel(ctx))
		return res, fmt.Errorf("write %s: %w", uri, err)
	}
	r, err := w.Close(ctx)
	if err != nil {
		return res, fmt.Errorf("commit %s: %w", uri, err)
	}
	res.Version, res.Rows, res.Skipped = r.Version, r.Rows, r.Skipped
	return res, nil
}

// sortedWeights is a canonical form of per-type weights: "a=1,b=3".
func sortedWeights(w map[string]float32) string {
	keys := slices.Sorted(maps.Keys(w))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.FormatFloat(float64(w[k]), 'g', -1, 32)
	}
	return strings.Join(parts, ",")
}

// ParseWeights reads "view=1,add_to_cart=3,purchase=5".
func ParseWeights(s string) (map[string]float32, error) {
	w := map[string]float32{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 32)
		if !ok || strings.TrimSpace(k) == "" || err != nil || f < 0 {
			return nil, badParam("weights %q: want TYPE=WEIGHT,... with weights >= 0, e.g. view=1,add_to_cart=3,purchase=5", s)
		}
		w[strings.TrimSpace(k)] = float32(f)
	}
	if len(w) == 0 {
		return nil, badParam("weights %q: want TYPE=WEIGHT,..., e.g. view=1,add_to_cart=3,purchase=5", s)
	}
	return w, nil
}
