package jobs

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// lshRecall measures SimilarItems against brute force on a sample of query items.
func lshRecall(t testing.TB, factors []float32, k, sample int) (recall float64, st LSHStats, lshTime, bruteTime time.Duration) {
	ctx := context.Background()
	n := len(factors) / k
	t0 := time.Now()
	got, st, err := SimilarItems(ctx, factors, k, 10, &LSHOptions{Bits: envInt("LSH_BITS", 0), Tables: envInt("LSH_TABLES", 0), Probes: envInt("LSH_PROBES", 0)})
	if err != nil {
		t.Fatal(err)
	}
	lshTime = time.Since(t0)
	r := rand.New(rand.NewPCG(1, 1))
	queries := make([]int32, min(sample, n))
	for i := range queries {
		queries[i] = int32(r.IntN(n))
	}
	t0 = time.Now()
	want, err := BruteForceSimilar(ctx, factors, k, 10, queries)
	if err != nil {
		t.Fatal(err)
	}
	// Scale the sample's time to all items: what brute force over every item would cost.
	bruteTime = time.Duration(float64(time.Since(t0)) * float64(n) / float64(len(queries)))
	hits, total := 0, 0
	for qi, q := range queries {
		in := map[int32]bool{}
		for _, nb := range got[q] {
			in[nb.Index] = true
		}
		for _, nb := range want[qi] {
			if in[nb.Index] {
				hits++
			}
			total++
		}
	}
	return float64(hits) / float64(total), st, lshTime, bruteTime
}

// itemFactorsFor is what LSH indexes in practice: ALS item factors. To reach 100,000 items without
// training, the tests use the generator's true factors (category centroids plus noise), which
// have the same clustered shape.
func trueFactors(t testing.TB, items, k int) []float32 {
	d, err := Generate(&GenOptions{Users: 1, Items: items, Interactions: 1, Factors: k, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	return d.ItemFactors
}

func TestLSHRecall(t *testing.T) {
	cases := []struct{ items, k int }{{4000, 32}, {3000, 64}}
	if raceEnabled {
		cases = cases[1:]
	}
	for _, c := range cases {
		rec, st, lt, bt := lshRecall(t, trueFactors(t, c.items, c.k), c.k, 500)
		t.Logf("%d items, %d factors: recall@10 %.3f, exact cosines for %.2f%% of pairs (%d tables × %d bits, %d probes), LSH %v, brute force ~%v",
			c.items, c.k, rec, 100*st.PairFraction, st.Tables, st.Bits, st.Probes, lt, bt)
		if rec < 0.9 {
			t.Errorf("%d items: LSH recall@10 %.3f < 0.90", c.items, rec)
		}
		if st.PairFraction > 0.10 {
			t.Errorf("%d items: exact cosine on %.1f%% of pairs", c.items, 100*st.PairFraction)
		}
	}
}

// BenchmarkLSH100k is the check: 100,000 items, 64 factors, recall@10 against brute
// force (on 2,000 sampled queries) and the share of pairs compared. LSH_ITEMS changes the size.
//
//	go test -run '^$' -bench LSH100k -benchtime 1x ./jobs
func BenchmarkLSH100k(b *testing.B) {
	items := envInt("LSH_ITEMS", 100000)
	f := trueFactors(b, items, 64)
	for b.Loop() {
		rec, st, lt, bt := lshRecall(b, f, 64, 2000)
		b.ReportMetric(rec, "recall@10")
		b.ReportMetric(100*st.PairFraction, "%pairs")
		b.ReportMetric(lt.Seconds(), "lsh-s")
		b.ReportMetric(bt.Seconds(), "brute-s")
		b.ReportMetric(float64(st.Visits)/float64(st.Candidates), "visits/candidate")
	}
}

// BenchmarkLSHRecallOnTable measures LSH recall@10 on the item factors of an earlier `lake als`
// run: JOBS_LSH_FACTORS=PREFIX/item_factors (e.g. a 20M-interaction, 100,000-item run).
//
//	JOBS_LSH_FACTORS=/tmp/out20m/item_factors go test -run '^$' -bench LSHRecallOnTable -benchtime 1x ./jobs
func BenchmarkLSHRecallOnTable(b *testing.B) {
	uri := os.Getenv("JOBS_LSH_FACTORS")
	if uri == "" {
		b.Skip("set JOBS_LSH_FACTORS=PREFIX/item_factors")
	}
	f, _, err := readItemFactors(context.Background(), uri, envInt("ALS_BENCH_FACTORS", 64))
	if err != nil {
		b.Fatal(err)
	}
	k := envInt("ALS_BENCH_FACTORS", 64)
	flat := make([]float32, 0, len(f)*k)
	for _, v := range f {
		flat = append(flat, v...)
	}
	rec, st, lt, bt := lshRecall(b, flat, k, 2000)
	b.Logf("%d items: recall@10 %.4f, exact cosines for %.2f%% of pairs, LSH %v, brute force (extrapolated) %v", len(f), rec, 100*st.PairFraction, lt, bt)
}
