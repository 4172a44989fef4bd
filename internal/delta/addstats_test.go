package delta

import "testing"

func TestAddNumRecords(t *testing.T) {
	for _, c := range []struct {
		stats string
		n     int64
		ok    bool
	}{
		{`{"numRecords":42,"minValues":{}}`, 42, true},
		{`{"numRecords":7}`, 7, true},
		{`{"minValues":{"a":1},"numRecords":9}`, 9, true},
		{`{"numRecords": 3 }`, 3, true},
		{`{"minValues":{}}`, 0, false},
		{``, 0, false},
		{`not json`, 0, false},
	} {
		n, ok := (&Add{Stats: c.stats}).NumRecords()
		if n != c.n || ok != c.ok {
			t.Errorf("%q: %d %v, want %d %v", c.stats, n, ok, c.n, c.ok)
		}
	}
	a := &Add{Stats: `{"numRecords":10}`, DeletionVector: &DeletionVector{Cardinality: 4}}
	if n, ok := a.LiveRecords(); n != 6 || !ok {
		t.Errorf("live records %d %v, want 6", n, ok)
	}
}
