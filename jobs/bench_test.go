package jobs

import (
	"context"
	"runtime"
	"syscall"
	"testing"
)

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// benchRatings generates ALS_BENCH_INTERACTIONS interactions (default 1M) with 1 user per 100
// and 1 item per 200 interactions.
func benchRatings(b *testing.B) (*Ratings, int) {
	n := envInt("ALS_BENCH_INTERACTIONS", 1000000)
	d, err := Generate(&GenOptions{Users: max(100, n/100), Items: max(50, n/200), Interactions: n, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	in := FromDataset(d)
	r, _ := in.Ratings(DefaultWeights(), 0, false, nil)
	return r, n
}

// BenchmarkALSIteration: seconds per ALS iteration (both half-steps) at ALS_BENCH_FACTORS
// factors (default 64) with the CG solver; reports interactions/s per core.
//
//	go test -run '^$' -bench ALSIteration -benchtime 5x ./jobs
//	ALS_BENCH_INTERACTIONS=5000000 go test -run '^$' -bench ALSIteration -benchtime 3x ./jobs
func BenchmarkALSIteration(b *testing.B) {
	r, n := benchRatings(b)
	k := envInt("ALS_BENCH_FACTORS", 64)
	o, err := (&ALSOptions{Factors: k, Solver: SolverCG}).resolve()
	if err != nil {
		b.Fatal(err)
	}
	// One iteration of warm-up from the seeded start, as TrainALS does.
	m, err := TrainALS(context.Background(), r, &ALSOptions{Factors: k, Iterations: 1})
	if err != nil {
		b.Fatal(err)
	}
	s := newSolver(&o)
	ctx := context.Background()
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for b.Loop() {
		if err := s.solve(ctx, m.Users, m.Items, &r.ByUser); err != nil {
			b.Fatal(err)
		}
		if err := s.solve(ctx, m.Items, m.Users, &r.ByItem); err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	cpu := (cpuSeconds() - cpu0) / float64(b.N)
	b.ReportMetric(sec, "s/iter")
	b.ReportMetric(cpu, "cpu-s/iter")
	// Per core: interactions per CPU-second of this process, which stays meaningful on a shared
	// machine where wall time does not.
	b.ReportMetric(float64(n)/cpu/1e6, "M-interactions/cpu-s")
	b.ReportMetric(float64(n)/sec/float64(runtime.GOMAXPROCS(0))/1e6, "M-interactions/s/core")
	b.ReportMetric(float64(r.ByUser.NNZ()), "pairs")
}

// BenchmarkCGRow: the hot loop, one row's CG update, must not allocate.
func BenchmarkCGRow(b *testing.B) {
	const k = 64
	y := make([]float32, 1000*k)
	for i := range y {
		y[i] = float32(i%7) / 7
	}
	yty, _ := gram(context.Background(), y, k, 0, 1)
	cols := make([]int32, 50)
	vals := make([]float32, 50)
	for i := range cols {
		cols[i], vals[i] = int32(i*13), 1
	}
	x := make([]float32, k)
	ws := newWorkspace(k, false)
	b.ReportAllocs()
	for b.Loop() {
		ws.cg(x, y, yty, 80, cols, vals, 3, 3)
	}
}

// BenchmarkRecommendUsers: the exact top-20 of every user of the benchmark data set
// (ALS_BENCH_INTERACTIONS, default 1M), with a model trained for 5 iterations.
func BenchmarkRecommendUsers(b *testing.B) {
	r, _ := benchRatings(b)
	m, err := TrainALS(context.Background(), r, &ALSOptions{Factors: envInt("ALS_BENCH_FACTORS", 64), Iterations: 5})
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for b.Loop() {
		if _, err := RecommendUsers(context.Background(), m, &r.ByUser, nil, 20); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(r.NUsers), "users")
}
