package delta

import "fmt"

// UnsupportedFeatureError reports a table that needs a protocol feature this engine does not
// implement.
type UnsupportedFeatureError struct {
	Feature string
	Write   bool // true: a writer feature, false: a reader feature
}

func (e *UnsupportedFeatureError) Error() string {
	if e.Write {
		return fmt.Sprintf("table needs writer feature %q, which lake does not support: the table can be read but not written", e.Feature)
	}
	return fmt.Sprintf("table needs reader feature %q, which lake does not support: use an engine that supports %s", e.Feature, e.Feature)
}
