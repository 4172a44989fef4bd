package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/jobs/trending"
	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/registry"
	"github.com/lakehouse/lake/table"
)

func init() {
	register(&command{name: "trending", summary: "find items whose interactions surge beyond their forecast, and the popular items, per window", run: runTrending})
}

func runTrending(ctx context.Context, e *env, args []string) error {
	fs := newFlags("trending", "--source URI --output PREFIX [--source-version N] [--window 1h] [--window-origin T] [--allowed-lateness D] [--count users|events|value] [--weights TYPE=W,...] [--types T,...] [--threshold X] [--min-count N] [--top N] [--force] [--follow [--poll D]] [--json]", e)
	source := fs.String("source", "", "the interaction table")
	output := fs.String("output", "", "the output prefix: PREFIX/trending and PREFIX/popular")
	version := fs.Int64("source-version", -1, "read this version of the source (default: the latest at start; not with --follow)")
	window := fs.String("window", "1h", "window length (Go durations plus d and w), at least 1s")
	origin := fs.String("window-origin", trending.DefaultOrigin.Format(time.RFC3339), "windows start at this time plus multiples of --window (RFC 3339)")
	lateness := fs.String("allowed-lateness", "", "a window closes once an event newer than its end plus this has been seen (default 10m; 0 for windows of a day or more, whose rows are stamped at the start of their day)")
	count := fs.String("count", trending.CountUsers, "an item's count in a window: users (distinct users, each with their strongest type's weight), events (every row its type's weight) or value (every row's value column times its type's weight, for pre-aggregated series such as cases per day; null or negative values count 0)")
	weights := fs.String("weights", "", "weight per interaction type, e.g. view=1,add_to_cart=3,purchase=5 (default: every type 1; other types 1)")
	types := fs.String("types", "", "count only these interaction types, e.g. view,purchase (default: all)")
	threshold := fs.Float64("threshold", 0, "flag an item when its score (-log10 of the tail probability per window, or the CUSUM statistic) reaches this (default: 8 for windows up to 1h, falling to 4 at 1d and beyond); for daily series with a budget of B false alarms per item-year, about log10(365/B) plus a margin")
	minCount := fs.Float64("min-count", trending.DefaultMinCount, "flag only items with at least this (weighted) count in the window")
	top := fs.Int("top", trending.DefaultTop, "popular items per window")
	force := fs.Bool("force", false, "rebuild the outputs from every closed window, replacing them")
	follow := fs.Bool("follow", false, "keep running: read new commits of the source and commit each window when it closes")
	poll := fs.String("poll", "1s", "with --follow: how often to look for new commits")
	asJSON := fs.Bool("json", false, "print the result as one JSON line")
	if _, err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	switch {
	case *source == "":
		return usagef("give --source URI, the interaction table")
	case *output == "":
		return usagef("give --output PREFIX, where trending and popular go")
	case *version < -1:
		return usagef("--source-version %d: want a version (0 or more)", *version)
	case *follow && *version >= 0:
		return usagef("--follow reads every new version; drop --source-version")
	case !(*threshold >= 0) || math.IsInf(*threshold, 0): // 0: the default for the window
		return usagef("--threshold %v: want a positive number, e.g. 6", *threshold)
	case !(*minCount > 0) || math.IsInf(*minCount, 0):
		return usagef("--min-count %v: want a positive number", *minCount)
	case *top < 1:
		return usagef("--top %d: want at least 1", *top)
	}
	switch *count {
	case trending.CountUsers, trending.CountEvents, trending.CountValue:
	default:
		return usagef("--count %q: want users, events or value", *count)
	}
	p := trending.Params{Threshold: *threshold, MinCount: *minCount, Top: *top, Count: *count}
	var err error
	if p.Window, err = jobs.ParseDuration(*window); err != nil || p.Window < time.Second {
		return usagef("--window %q: want a duration of at least 1s, e.g. 1h, 15m or 1d", *window)
	}
	p.Lateness = trending.DefaultLatenessFor(p.Window)
	if *lateness != "" {
		if p.Lateness, err = jobs.ParseDuration(*lateness); err != nil || p.Lateness < 0 {
			return usagef("--allowed-lateness %q: want a duration of 0 or more, e.g. 10m", *lateness)
		}
	}
	if p.Origin, err = parseTime(*origin); err != nil {
		return usagef("--window-origin %q: want RFC 3339, e.g. 1970-01-05T00:00:00Z", *origin)
	}
	if *weights != "" {
		w, err := jobs.ParseWeights(*weights)
		if err != nil {
			return usagef("--%v", err)
		}
		p.Weights = map[string]float64{}
		for k, v := range w {
			p.Weights[k] = float64(v)
		}
	}
	if *types != "" {
		for _, t := range strings.Split(*types, ",") {
			if t = strings.TrimSpace(t); t != "" {
				p.Types = append(p.Types, t)
			}
		}
		if len(p.Types) == 0 {
			return usagef("--types %q: want a list of interaction types, e.g. view,purchase", *types)
		}
	}
	opts := &trending.Options{Source: *source, SourceVersion: *version, Output: *output, Params: p, Force: *force, Progress: e.stderr}
	if *follow {
		every, err := jobs.ParseDuration(*poll)
		if err != nil || every <= 0 {
			return usagef("--poll %q: want a positive duration, e.g. 1s", *poll)
		}
		fo := &trending.FollowOptions{Options: *opts, Poll: every}
		fo.OnCommit = func(sv int64, _ []trending.Window, outs []trending.OutputResult) {
			if err := registerTrending(ctx, e.stderr, *output, sv, outs); err != nil {
				fmt.Fprintf(e.stderr, "lake trending: %v\n", err) // keep following; the next round registers its own versions
			}
		}
		err = trending.Follow(ctx, fo)
		if errors.Is(err, context.Canceled) {
			return nil // Ctrl-C: every committed window is whole
		}
		return trendingErr(err)
	}
	res, run, err := registry.RunTrending(ctx, opts, nil)
	var regErr error
	if errors.Is(err, registry.ErrNotRegistered) {
		regErr, err = err, nil // the outputs are committed: say so below
	}
	if err != nil {
		return trendingErr(err)
	}
	regOut := e.stdout
	if *asJSON {
		regOut = e.stderr
	}
	if err := reportRegistration(regOut, *output, run, regErr); err != nil {
		return err
	}
	if *asJSON {
		b, _ := json.Marshal(res)
		fmt.Fprintf(e.stdout, "%s\n", b)
		return nil
	}
	if res.Windows == 0 {
		fmt.Fprintf(e.stdout, "nothing written: no window has closed yet (%d events)\n", res.Events)
		return nil
	}
	if res.UpToDate {
		fmt.Fprintf(e.stdout, "nothing written: the outputs under %s already hold every closed window through %s (--force rebuilds)\n", *output, res.LastWindow.Format(time.RFC3339))
		return nil
	}
	for _, o := range res.Outputs {
		if o.Skipped {
			fmt.Fprintf(e.stdout, "%s: already holds every closed window; not written\n", o.URI)
		} else {
			fmt.Fprintf(e.stdout, "%s: version %d, %d windows, %d rows\n", o.URI, o.Version, o.Windows, o.Rows)
		}
	}
	fmt.Fprintf(e.stdout, "%d events, %d items, %d closed windows (%s to %s), %d trending rows\n", res.Events, res.Items, res.Windows,
		res.FirstWindow.Format(time.RFC3339), res.LastWindow.Format(time.RFC3339), res.Flagged)
	if p.Count == trending.CountUsers && res.Windows > 1 && maxPopularCount(ctx, jobs.ChildURI(*output, trending.OutPopular)) == 1 {
		fmt.Fprintf(e.stderr, "lake trending: note: no item had more than one distinct user in any window; if each row is already a count (cases per day and region, in the value column), use --count value (or --count events to count rows)\n")
	}
	return nil
}

// maxPopularCount is the largest count in a popular table (0 when it cannot be read).
func maxPopularCount(ctx context.Context, uri string) int64 {
	t, err := table.Open(ctx, uri, nil)
	if err != nil {
		return 0
	}
	defer t.Close()
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return 0
	}
	sc, err := reader.NewScan(ctx, t, snap, &reader.ScanOptions{Columns: []string{"count"}})
	if err != nil {
		return 0
	}
	var m int64
	for rec, err := range sc.Records(ctx) {
		if err != nil {
			return 0
		}
		if c, ok := rec.Column(0).(*array.Int64); ok {
			for i := range c.Len() {
				m = max(m, c.Value(i))
			}
		}
	}
	return m
}

func trendingErr(err error) error {
	if errors.Is(err, trending.ErrBadParameter) {
		return usagef("%v", err)
	}
	return err
}
