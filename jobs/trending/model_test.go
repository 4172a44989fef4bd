package trending

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestTopItemsMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, top := range []int{1, 3, 20, 500} {
		d, err := NewDetector(&Params{Top: top})
		if err != nil {
			t.Fatal(err)
		}
		n := 300
		for i := range n {
			d.item("i" + strconv.Itoa(i))
		}
		d.cur = grow(d.cur, n)
		touched := make([]int32, n)
		for i := range n {
			touched[i] = int32(i)
			d.cur[i] = int64(r.IntN(20))
		}
		want := slices.Clone(touched)
		slices.SortFunc(want, func(a, b int32) int {
			if c := cmp.Compare(d.cur[b], d.cur[a]); c != 0 {
				return c
			}
			return cmp.Compare(d.itemIDs[a], d.itemIDs[b])
		})
		want = want[:min(n, top)]
		if got := d.topItems(touched); !slices.Equal(got, want) {
			t.Fatalf("top %d: got %v, want %v", top, got, want)
		}
	}
}

// The NB tail tends to the Poisson tail as the size grows, and both match a direct sum of the
// Poisson probabilities at integer counts.
func TestTailScores(t *testing.T) {
	for _, c := range []struct{ x, mu float64 }{{3, 0.5}, {10, 2}, {40, 20}, {200, 150}, {7, 0.01}} {
		direct := 0.0
		p := math.Exp(-c.mu)
		for k := 0; k < 2000; k++ {
			if float64(k) >= c.x {
				direct += p
			}
			p *= c.mu / float64(k+1)
		}
		want := -math.Log10(direct)
		if got := poissonTailScore(c.x, c.mu); math.Abs(got-want) > 1e-6*max(1, want) {
			t.Errorf("poisson(%v, %v) = %v, want %v", c.x, c.mu, got, want)
		}
		if got := nbTailScore(c.x, c.mu, 1e9); math.Abs(got-want) > 1e-3*max(1, want) {
			t.Errorf("nb(%v, %v, r=1e9) = %v, want %v", c.x, c.mu, got, want)
		}
		if nb := nbTailScore(c.x, c.mu, 5); nb > want+1e-9 {
			t.Errorf("nb(%v, %v, r=5) = %v is above the Poisson %v: overdispersion must make a count less surprising", c.x, c.mu, nb, want)
		}
	}
	for _, bad := range [][3]float64{{math.NaN(), 1, 1}, {5, math.NaN(), 1}, {5, 0, 1}, {5, 1, 0}, {1, 5, 1}, {math.Inf(1), 1, 1}, {1e6, 1e-300, 1}} {
		s := nbTailScore(bad[0], bad[1], bad[2])
		if math.IsNaN(s) || s < 0 || s > MaxScore {
			t.Errorf("nb%v = %v", bad, s)
		}
	}
}

// Events given in any order, with the same windows closing, give the same results; and so do
// events fed in time order with windows closed as they go (as --follow does), with categories
// on only some events (an item's category may come late).
func TestDetectorOrderIndependent(t *testing.T) {
	d := smallDataset(t, 21)
	end := d.Events[len(d.Events)-1].Time + 2000*3600e6
	feed := func(order []int, lateness time.Duration, every int) []Window {
		det := mustDetector(t, Params{Lateness: lateness})
		var out []Window
		for n, i := range order {
			e := d.Events[i]
			cat := ""
			if i%5 == 0 {
				cat = "c" + strconv.Itoa(int(d.ItemCategory[e.Item]))
			}
			det.Add("u"+strconv.Itoa(int(e.User)), "i"+strconv.Itoa(int(e.Item)), "view", e.Time, cat)
			if every > 0 && n%every == 0 {
				out = append(out, det.Advance()...)
			}
		}
		det.Add("u", "late", "view", end, "") // closes every window of the data
		return append(out, det.Advance()...)
	}
	order := make([]int, len(d.Events))
	for i := range order {
		order[i] = i
	}
	inOrder := feed(order, 2*time.Hour, 0)
	progressive := feed(order, 2*time.Hour, 500)
	rand.New(rand.NewPCG(5, 6)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	shuffled := feed(order, 2*time.Hour, 0)
	for name, b := range map[string][]Window{"shuffled": shuffled, "progressive": progressive} {
		if len(inOrder) != len(b) {
			t.Fatalf("%s: %d windows, want %d", name, len(b), len(inOrder))
		}
		for i := range inOrder {
			if !slices.Equal(inOrder[i].Trending, b[i].Trending) || !slices.Equal(inOrder[i].Popular, b[i].Popular) {
				t.Fatalf("%s: window %d differs:\n%v\n%v", name, inOrder[i].Index, inOrder[i].Trending, b[i].Trending)
			}
		}
	}
}

// dedupe (the fast path) equals sorting the pairs and keeping each key's largest weight (the
// obvious reference).
func TestDedupeMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	d := mustDetector(t, Params{})
	for _, n := range []int{0, 1, 2, 3, 100, 5000} {
		pairs := make([]pair, n)
		for i := range pairs {
			k := uint64(r.IntN(max(1, n/3)))
			pairs[i] = pair{k * 0x9e3779b97f4a7c15, k<<32 | uint64(r.IntN(1000))}
		}
		ref := map[uint64]uint64{}
		for _, p := range pairs {
			if old, ok := ref[p.key]; !ok || uint32(p.val) > uint32(old) {
				ref[p.key] = p.val
			}
		}
		got := d.dedupe(slices.Clone(pairs))
		if len(got) != len(ref) {
			t.Fatalf("n %d: %d pairs, want %d", n, len(got), len(ref))
		}
		for _, p := range got {
			if ref[p.key] != p.val {
				t.Fatalf("n %d: key %x val %x, want %x", n, p.key, p.val, ref[p.key])
			}
		}
	}
}
