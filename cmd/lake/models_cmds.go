package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/jobs/trending"
	"github.com/lakehouse/lake/registry"
)

func init() {
	register(&command{name: "models", summary: "the model registry (PREFIX/models): list the job runs, promote a run, roll back to the previous live run", run: runModels})
}

func runModels(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("give a subcommand: lake models list|promote|rollback PREFIX ...")
	}
	switch args[0] {
	case "list":
		return runModelsList(ctx, e, args[1:])
	case "promote":
		return runModelsPromote(ctx, e, args[1:])
	case "rollback":
		return runModelsRollback(ctx, e, args[1:])
	case "-h", "-help", "--help":
		fmt.Fprintln(e.stderr, "Usage: lake models list PREFIX [--format table|jsonl]\n       lake models promote PREFIX RUN_ID\n       lake models rollback PREFIX [--job als|trending]")
		return nil
	}
	return usagef("unknown subcommand %q: want list, promote or rollback", args[0])
}

func registryErr(err error) error {
	if errors.Is(err, registry.ErrUnknownRun) || errors.Is(err, registry.ErrBadState) {
		return usagef("%v", err)
	}
	return err
}

func runModelsList(ctx context.Context, e *env, args []string) error {
	fs := newFlags("models list", "PREFIX [--format table|jsonl]", e)
	format := fs.String("format", "table", "table or jsonl (one run per line, its current state)")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *format != "table" && *format != "jsonl" {
		return usagef("--format %q: want table or jsonl", *format)
	}
	st, err := registry.Load(ctx, pos[0])
	if err != nil {
		return err
	}
	w := newBufWriter(e.stdout)
	if *format == "jsonl" {
		enc := json.NewEncoder(w)
		for _, r := range st.Runs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return w.Flush()
	}
	writeRunsTable(w, st.Runs)
	return w.Flush()
}

func writeRunsTable(w io.Writer, runs []*registry.Run) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN_ID\tJOB\tSTATUS\tCREATED\tSOURCE_VERSION\tRECALL@10\tDRIFT\tOUTPUTS\tREASON")
	for _, r := range runs {
		recall := "-"
		if v, ok := r.Recall(); ok {
			recall = fmt.Sprintf("%.4f", v)
		}
		names := slices.Sorted(func(yield func(string) bool) {
			for k := range r.Outputs {
				if !yield(k) {
					return
				}
			}
		})
		outs := make([]string, len(names))
		for i, n := range names {
			outs[i] = fmt.Sprintf("%s@%d", n, r.Outputs[n])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.RunID, r.Job, r.Status, r.CreatedAt.Format(time.RFC3339),
			r.SourceVersion, recall, driftCell(r.Metrics), strings.Join(outs, ","), r.Reason)
	}
	tw.Flush()
}

func runModelsPromote(ctx context.Context, e *env, args []string) error {
	fs := newFlags("models promote", "PREFIX RUN_ID", e)
	pos, err := parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	r, err := registry.Promote(ctx, pos[0], pos[1], nil)
	if err != nil {
		return registryErr(err)
	}
	fmt.Fprintf(e.stdout, "%s run %s is live (%s)\n", r.Job, r.RunID, r.Reason)
	return nil
}

func runModelsRollback(ctx context.Context, e *env, args []string) error {
	fs := newFlags("models rollback", "PREFIX [--job als|trending]", e)
	job := fs.String("job", registry.JobALS, "the job whose live run is rolled back: als or trending")
	pos, err := parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *job != registry.JobALS && *job != registry.JobTrending {
		return usagef("--job %q: want als or trending", *job)
	}
	live, retired, err := registry.Rollback(ctx, pos[0], *job, nil)
	if err != nil {
		return registryErr(err)
	}
	fmt.Fprintf(e.stdout, "rolled back %s run %s; %s is live again\n", *job, retired.RunID, live.RunID)
	return nil
}

// reportRun says on w what the gate decided for a registered run (nil: nothing registered).
func reportRun(w io.Writer, prefix string, r *registry.Run) {
	_ = reportRegistration(w, prefix, r, nil)
}

// registerTrending registers a `lake trending` run or --follow round (the hook in
// trending_cmds.go).
func registerTrending(ctx context.Context, w io.Writer, prefix string, sourceVersion int64, outs []trending.OutputResult) error {
	r, err := registry.RegisterTrending(ctx, prefix, sourceVersion, outs, nil)
	return reportRegistration(w, prefix, r, err)
}

func reportRegistration(w io.Writer, prefix string, r *registry.Run, err error) error {
	if err != nil {
		return fmt.Errorf("the outputs are committed, but registering the run failed: %w", err)
	}
	if r != nil {
		fmt.Fprintf(w, "registered %s run %s in %s: %s (%s)\n", r.Job, r.RunID, registry.URI(prefix), r.Status, r.Reason)
	}
	return nil
}

// driftCell is a run's drift from the model live when it ran, for the runs table: the mean
// similar-items Jaccard and the shares of new users and items ("-" without a drift report).
func driftCell(metrics map[string]any) string {
	d, ok := metrics[jobs.MetricDrift].(map[string]any)
	if !ok {
		return "-"
	}
	f := func(k string) string {
		if v, ok := d[k].(float64); ok {
			return fmt.Sprintf("%.2f", v)
		}
		return "-"
	}
	return fmt.Sprintf("sim=%s new_users=%s new_items=%s", f("similar_jaccard"), f("new_users_share"), f("new_items_share"))
}
