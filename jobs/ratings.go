package jobs

import (
	"cmp"
	"slices"
)

// Ratings is an implicit-feedback matrix: for each (user, item) pair with interactions, the
// aggregated weight r (the sum of the interactions' weights). It is held twice, by user rows and by
// item rows (compressed sparse rows), because ALS solves for one side from the other.
type Ratings struct {
	NUsers, NItems int
	ByUser         CSR
	ByItem         CSR
}

// CSR is a sparse matrix in compressed sparse rows: row r's columns are
// Indices[Indptr[r]:Indptr[r+1]], ascending, with Values alongside.
type CSR struct {
	Indptr  []int64
	Indices []int32
	Values  []float32
}

// Row is row r's columns and values.
func (m *CSR) Row(r int) ([]int32, []float32) {
	lo, hi := m.Indptr[r], m.Indptr[r+1]
	return m.Indices[lo:hi], m.Values[lo:hi]
}

// NNZ is the number of stored entries.
func (m *CSR) NNZ() int { return len(m.Indices) }

// NewRatings builds the matrix from triplets; duplicate (user, item) pairs are summed. The
// triplet slices are not kept.
func NewRatings(nUsers, nItems int, users, items []int32, weights []float32) *Ratings {
	byUser := buildCSR(nUsers, users, items, weights)
	byItem := transpose(&byUser, nItems)
	return &Ratings{NUsers: nUsers, NItems: nItems, ByUser: byUser, ByItem: byItem}
}

func buildCSR(nRows int, rows, cols []int32, vals []float32) CSR {
	counts := make([]int64, nRows+1)
	for _, r := range rows {
		counts[r+1]++
	}
	for i := 1; i <= nRows; i++ {
		counts[i] += counts[i-1]
	}
	idx := make([]int32, len(rows))
	val := make([]float32, len(rows))
	next := slices.Clone(counts[:nRows])
	for i, r := range rows {
		p := next[r]
		next[r]++
		idx[p] = cols[i]
		val[p] = vals[i]
	}
	// Sort each row by column and merge duplicates, compacting in place.
	type pair struct {
		c int32
		v float32
	}
	var tmp []pair
	out := CSR{Indptr: make([]int64, nRows+1)}
	w := int64(0)
	for r := range nRows {
		lo, hi := counts[r], counts[r+1]
		tmp = tmp[:0]
		for p := lo; p < hi; p++ {
			tmp = append(tmp, pair{idx[p], val[p]})
		}
		slices.SortFunc(tmp, func(a, b pair) int { return cmp.Compare(a.c, b.c) })
		for j, e := range tmp {
			if j > 0 && tmp[j-1].c == e.c {
				val[w-1] += e.v
				continue
			}
			idx[w], val[w] = e.c, e.v
			w++
		}
		out.Indptr[r+1] = w
	}
	out.Indices, out.Values = idx[:w:w], val[:w:w]
	return out
}

func transpose(m *CSR, nCols int) CSR {
	nRows := len(m.Indptr) - 1
	t := CSR{Indptr: make([]int64, nCols+1), Indices: make([]int32, len(m.Indices)), Values: make([]float32, len(m.Values))}
	for _, c := range m.Indices {
		t.Indptr[c+1]++
	}
	for i := 1; i <= nCols; i++ {
		t.Indptr[i] += t.Indptr[i-1]
	}
	next := slices.Clone(t.Indptr[:nCols])
	for r := range nRows { // rows ascending, so each transposed row comes out sorted
		cols, vals := m.Row(r)
		for j, c := range cols {
			p := next[c]
			next[c]++
			t.Indices[p] = int32(r)
			t.Values[p] = vals[j]
		}
	}
	return t
}
