package reader

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/lakehouse/lake/txlog"
)

// RowMatcher tests the rows of records against filters (ANDed) with a scan's semantics: a
// null never matches, not even !=. Records have the table's columns under their logical
// names and Arrow types, as Scan yields them. Copy-on-write deletes use it to split a file's
// rows into those to delete and those to keep.
type RowMatcher struct {
	filters []*boundFilter
}

// NewRowMatcher binds filters to schema; a filter that does not fit is a *FilterError.
func NewRowMatcher(schema *txlog.StructType, filters []Filter) (*RowMatcher, error) {
	m := &RowMatcher{}
	for _, f := range filters {
		bf, err := bindFilter(f, schema)
		if err != nil {
			return nil, err
		}
		m.filters = append(m.filters, bf)
	}
	return m, nil
}

// Match sets match[i] to whether row i of rec satisfies every filter; match must have
// rec.NumRows() elements.
func (m *RowMatcher) Match(rec arrow.RecordBatch, match []bool) error {
	if int64(len(match)) != rec.NumRows() {
		return fmt.Errorf("match has %d elements for %d rows", len(match), rec.NumRows())
	}
	for i := range match {
		match[i] = true
	}
	for _, f := range m.filters {
		idx := rec.Schema().FieldIndices(f.path[0].Name)
		if len(idx) != 1 {
			return fmt.Errorf("the record has no column %q", f.path[0].Name)
		}
		if err := f.apply(rec.Column(idx[0]), match); err != nil {
			return err
		}
	}
	return nil
}
