package txlog

import "testing"

func TestListingHasGap(t *testing.T) {
	mk := func(commits []int64, checkpoints ...int64) *listing {
		l := &listing{commits: map[int64]commitFile{}, checkpoints: map[int64][]*checkpointSet{}}
		for _, v := range commits {
			l.commits[v] = commitFile{version: v}
		}
		for _, v := range checkpoints {
			l.checkpoints[v] = []*checkpointSet{{version: v, kind: "classic"}}
		}
		return l
	}
	cases := []struct {
		name string
		l    *listing
		from int64
		want bool
	}{
		{"contiguous", mk([]int64{0, 1, 2, 3}), 0, false},
		{"N+1 without N", mk([]int64{0, 1, 3}), 0, true},
		{"old commits cleaned up below a checkpoint", mk([]int64{5, 6, 7}, 5), 0, false},
		{"checkpoint without its commit", mk([]int64{6, 7}, 5), 0, false},
		{"gap above the checkpoint", mk([]int64{6, 8}, 5), 0, true},
		{"incremental listing from 10", mk([]int64{10, 11}), 10, false},
		{"incremental listing with a gap", mk([]int64{10, 12}), 10, true},
		{"incremental listing missing its first", mk([]int64{11}), 10, true},
		{"empty", mk(nil), 0, false},
	}
	for _, c := range cases {
		if got := c.l.hasGap(c.from); got != c.want {
			t.Errorf("%s: hasGap = %v, want %v", c.name, got, c.want)
		}
	}
}
