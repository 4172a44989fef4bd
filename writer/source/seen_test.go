package source

import (
	"math/rand/v2"
	"testing"
)

func TestSeen(t *testing.T) {
	s := NewSeen()
	ref := map[uint64]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200_000 {
		h := rng.Uint64() % 150_000 // many repeats
		if i%1000 == 0 {
			h = 0 // the reserved slot value is stored too
		}
		if got, want := s.add(h), !ref[h]; got != want {
			t.Fatalf("add(%d) = %v, want %v", h, got, want)
		}
		ref[h] = true
	}
	if s.Len() != len(ref) {
		t.Fatalf("Len %d, want %d", s.Len(), len(ref))
	}
}

// BenchmarkSeen compares the set with a Go map at a million ids:
//
//	go test ./writer/source -run '^$' -bench Seen
func BenchmarkSeen(b *testing.B) {
	const n = 1_000_000
	keys := make([]uint64, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range keys {
		keys[i] = rng.Uint64()
	}
	b.Run("set", func(b *testing.B) {
		for b.Loop() {
			s := NewSeen()
			for _, k := range keys {
				s.add(k)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/id")
	})
	b.Run("batch", func(b *testing.B) {
		for b.Loop() {
			s := NewSeen()
			s.addBatch(keys)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/id")
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			m := map[uint64]struct{}{}
			for _, k := range keys {
				if _, ok := m[k]; !ok {
					m[k] = struct{}{}
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/id")
	})
}

func TestSeenBatch(t *testing.T) {
	one, batch := NewSeen(), NewSeen()
	rng := rand.New(rand.NewPCG(3, 4))
	hs := make([]uint64, 50_000)
	for i := range hs {
		hs[i] = rng.Uint64() % 30_000
	}
	var want []int
	for i, h := range hs[:20_000] {
		if !one.add(h) {
			want = append(want, i)
		}
	}
	got := batch.addBatch(hs[:20_000])
	for i, h := range hs[20_000:] {
		if !one.add(h) {
			want = append(want, 20_000+i)
		}
	}
	for _, d := range batch.addBatch(hs[20_000:]) {
		got = append(got, 20_000+d)
	}
	if len(got) != len(want) || batch.Len() != one.Len() {
		t.Fatalf("%d dups, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("dup %d at %d, want %d", i, got[i], want[i])
		}
	}
}
