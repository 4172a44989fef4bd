package trending

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/lakehouse/lake/jobs"
	"github.com/lakehouse/lake/table"
)

// Each count mode's window counts (the popular rows, every item kept) equal a direct count of
// the events: distinct users, rows, or the sum of the values (null and negative: 0), each
// times its type's weight.
func TestCountModes(t *testing.T) {
	d := smallDataset(t, 31)
	weights := map[string]float64{"view": 1, "add_to_cart": 2, "purchase": 0.5}
	for _, mode := range []string{CountUsers, CountEvents, CountValue} {
		det := mustDetector(t, Params{Count: mode, Weights: weights, Top: 100000})
		want := map[int64]map[string]float64{}
		seen := map[[3]int64]float64{} // users: (window, item, user) -> largest weight
		var nulls int64
		for _, e := range d.Events {
			typ := jobs.GenTypeNames[e.Type]
			item := jobs.ItemID(e.Item)
			det.AddValue(jobs.UserID(e.User), item, typ, e.Time, e.Value, "")
			k := det.WindowIndex(e.Time)
			if want[k] == nil {
				want[k] = map[string]float64{}
			}
			w := weights[typ]
			switch mode {
			case CountUsers:
				key := [3]int64{k, int64(e.Item), int64(e.User)}
				if w > seen[key] {
					want[k][item] += w - seen[key]
					seen[key] = w
				}
			case CountEvents:
				want[k][item] += w
			case CountValue:
				if math.IsNaN(e.Value) {
					nulls++
				} else {
					want[k][item] += w * max(0, e.Value)
				}
			}
		}
		windows := det.Advance()
		if len(windows) < 100 {
			t.Fatalf("%s: %d windows", mode, len(windows))
		}
		if mode == CountValue && (det.ValueNull() != nulls || nulls == 0 || det.ValueNegative() != 0) {
			t.Errorf("value: %d nulls counted, want %d (and no negative: %d)", det.ValueNull(), nulls, det.ValueNegative())
		}
		for _, w := range windows {
			got := map[string]float64{}
			for _, r := range w.Popular {
				got[r.Item] = r.Count
			}
			for item, c := range want[w.Index] {
				if c > 0 && math.Abs(got[item]-c) > 1e-3*max(1, c) {
					t.Fatalf("%s: window %d item %s: count %v, want %v", mode, w.Index, item, got[item], c)
				}
			}
			if mode == CountUsers {
				continue
			}
			for item := range got {
				if _, ok := want[w.Index][item]; !ok {
					t.Fatalf("%s: window %d: item %s counted, not in the window", mode, w.Index, item)
				}
			}
		}
	}
	// Negative values count 0 and are counted.
	det := mustDetector(t, Params{Count: CountValue, Lateness: 0, Window: 24 * time.Hour})
	day := DefaultOrigin.UnixMicro()
	det.AddValue("u", "a", "case", day, -5, "")
	det.AddValue("u", "a", "case", day, 7, "")
	det.Add("u", "a", "case", day, "") // no value: null
	det.AddValue("u", "a", "case", day+86400e6, 1, "")
	ws := det.Advance()
	if len(ws) != 1 || ws[0].Total != 7 || det.ValueNegative() != 1 || det.ValueNull() != 1 {
		t.Fatalf("windows %+v, %d negative, %d null", ws, det.ValueNegative(), det.ValueNull())
	}
}

func TestCountParams(t *testing.T) {
	if _, err := NewDetector(&Params{Count: "cases"}); !errors.Is(err, ErrBadParameter) {
		t.Fatalf("count cases: %v", err)
	}
	// The default count keeps the parameters (so the appIds and checkpoints) of the outputs
	// written before the count modes existed; another mode, or daily windows, is another model.
	users := mustDetector(t, Params{}).Params()
	m := paramsMap("src", users)
	if _, ok := m["count"]; ok || m["model"] != "trending-v1" || len(m) != 10 {
		t.Fatalf("users params %v", m)
	}
	for _, p := range []Params{{Count: CountValue}, {Count: CountEvents}, {Window: 24 * time.Hour}} {
		r := mustDetector(t, p).Params()
		m := paramsMap("src", r)
		if m["model"] != "trending-v2" || jobs.AppID("trending", OutTrending, m) == jobs.AppID("trending", OutTrending, paramsMap("src", users)) {
			t.Errorf("%+v: params %v", p, m)
		}
		if (r.Count != CountUsers) != (m["count"] == r.Count) {
			t.Errorf("%+v: count %v", p, m["count"])
		}
	}
	if DefaultLatenessFor(time.Hour) != DefaultLateness || DefaultLatenessFor(24*time.Hour) != 0 || DefaultLatenessFor(7*24*time.Hour) != 0 {
		t.Error("DefaultLatenessFor")
	}
}

// A checkpoint written in one count mode is not restored in another: the mode is in the
// appId, which names the checkpoint and which restore checks.
func TestCheckpointCountMode(t *testing.T) {
	d := smallDataset(t, 32)
	src, out := memURI("events"), memURI("out")
	v := writeDataset(t, src, d, 0, len(d.Events)/2)
	users := Params{Lateness: 24 * time.Hour}
	value := Params{Lateness: 24 * time.Hour, Count: CountValue}
	opts := &FollowOptions{Options: Options{Source: src, SourceVersion: -1, Output: out, Params: users}, Poll: time.Millisecond, CheckpointEvery: time.Nanosecond}
	if err := followUntil(t, opts, func() int64 { return v }, 0); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tb, err := table.Open(ctx, jobs.ChildURI(out, OutTrending), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	usersApp := jobs.AppID("trending", OutTrending, paramsMap(src, mustDetector(t, users).Params()))
	valueApp := jobs.AppID("trending", OutTrending, paramsMap(src, mustDetector(t, value).Params()))
	data, err := tb.Bucket().ReadAll(ctx, checkpointKey(usersApp))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := mustDetector(t, value).restore(data, valueApp); err == nil {
		t.Fatal("a users checkpoint restored for value")
	}
	if checkpointKey(usersApp) == checkpointKey(valueApp) {
		t.Fatal("one checkpoint key for two count modes")
	}
	// A value follower on the same prefix starts from a full scan: the users checkpoint is
	// not its own.
	var progress syncBuffer
	vo := &FollowOptions{Options: Options{Source: src, SourceVersion: -1, Output: out, Params: value, Progress: &progress},
		Poll: time.Millisecond, CheckpointEvery: time.Nanosecond}
	if err := followUntil(t, vo, func() int64 { return v }, 0); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(progress.String(), "from the checkpoint") || strings.Contains(progress.String(), "checkpoint ignored") {
		t.Errorf("value follower on the users prefix:\n%s", progress.String())
	}
	// A value follower restarts from its own checkpoint, and commits what a value batch run
	// does.
	vout := memURI("vout")
	vo.Output, vo.Progress = vout, nil
	if err := followUntil(t, vo, func() int64 { return v }, 0); err != nil {
		t.Fatal(err)
	}
	v = writeDataset(t, src, d, len(d.Events)/2, len(d.Events))
	progress = syncBuffer{}
	vo.Progress = &progress
	if err := followUntil(t, vo, func() int64 { return v }, 0); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "from the checkpoint") {
		t.Errorf("value follower restart:\n%s", progress.String())
	}
	ref := memURI("ref")
	res, err := Run(ctx, &Options{Source: src, SourceVersion: -1, Output: ref, Params: value})
	if err != nil {
		t.Fatal(err)
	}
	compareOutputs(t, vout, ref)
	tb, err = table.Open(ctx, jobs.ChildURI(vout, OutTrending), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	hist, err := tb.History(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	op := hist[0].CommitInfo.OperationParameters
	if !strings.Contains(op["parameters"].(string), `"count":"value"`) || !strings.Contains(op["metrics"].(string), `"valueNullCountedZero"`) {
		t.Errorf("lineage %v", op)
	}
	t.Logf("value run: %d windows, %d flagged", res.Windows, res.Flagged)
}

// Large, overdispersed counts without an outbreak (100 to 10,000 a day, negative-binomial sizes
// 8 to 15: a day's count varies by a quarter to a third): the variance follows them (site-wide
// and per item), so flags stay rare.
func TestLargeOverdispersedCounts(t *testing.T) {
	o := outbreakOptions{Regions: 20, Days: 731, Seed: 9, Scale: 20, MaxSize: 15}
	s := genOutbreaks(o)
	flags, det := detectSeries(t, s, outbreakParams())
	n := 0
	for _, f := range flags {
		n += len(f)
	}
	ry := float64(o.Regions*o.Days) / 365.25
	t.Logf("%d flags over %.0f region-years (%.2f per region-year); dispersion %.2f, forecast error %.4f", n, ry, float64(n)/ry, det.disp, det.delta2)
	if float64(n)/ry > 1 {
		t.Errorf("%.2f flags per region-year without an outbreak, want <= 1", float64(n)/ry)
	}
	// The default threshold of daily windows (4): rarer still.
	defFlags, _ := detectSeries(t, s, &Params{Count: CountValue, Window: 24 * time.Hour})
	nd := 0
	for _, f := range defFlags {
		nd += len(f)
	}
	if float64(nd)/ry > 0.25 || nd > n {
		t.Errorf("default threshold: %d flags (%.2f per region-year), want <= 0.25 and no more than at 3.5: %v", nd, float64(nd)/ry, defFlags)
	}
}

func TestDefaultThresholdFor(t *testing.T) {
	for _, c := range []struct {
		w    time.Duration
		want float64
	}{{time.Minute, 8}, {time.Hour, 8}, {24 * time.Hour, 4}, {7 * 24 * time.Hour, 4}} {
		if got := DefaultThresholdFor(c.w); got != c.want {
			t.Errorf("DefaultThresholdFor(%v) = %v, want %v", c.w, got, c.want)
		}
	}
	if got := DefaultThresholdFor(6 * time.Hour); !(got > 4 && got < 8) {
		t.Errorf("DefaultThresholdFor(6h) = %v, want between 4 and 8", got)
	}
	p, err := (&Params{Window: 24 * time.Hour}).resolve()
	if err != nil || p.Threshold != 4 {
		t.Errorf("a daily window's default threshold: %v %v", p.Threshold, err)
	}
}
