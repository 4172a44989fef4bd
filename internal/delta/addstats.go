package delta

import (
	"encoding/json"
	"strconv"
	"strings"
)

// NumRecords returns the file's row count from its JSON statistics (before any deletion vector
// is applied), and false when the statistics do not say.
func (a *Add) NumRecords() (int64, bool) {
	if a.Stats == "" {
		return 0, false
	}
	// Writers put numRecords first: read it without decoding the whole object (describe and
	// the scheduler call this for every file of large tables).
	if rest, ok := strings.CutPrefix(a.Stats, `{"numRecords":`); ok {
		if end := strings.IndexAny(rest, ",}"); end > 0 {
			if n, err := strconv.ParseInt(rest[:end], 10, 64); err == nil {
				return n, true
			}
		}
	}
	var s struct {
		NumRecords *int64 `json:"numRecords"`
	}
	if err := json.Unmarshal([]byte(a.Stats), &s); err != nil || s.NumRecords == nil {
		return 0, false
	}
	return *s.NumRecords, true
}

// LiveRecords returns NumRecords minus the rows the file's deletion vector removes.
func (a *Add) LiveRecords() (int64, bool) {
	n, ok := a.NumRecords()
	if ok && a.DeletionVector != nil {
		n = max(n-a.DeletionVector.Cardinality, 0)
	}
	return n, ok
}
