package jobs

import (
	"errors"
	"fmt"
	"strings"
)

// ErrEmptySource: the pinned snapshot of the source has no interactions to learn from.
var ErrEmptySource = errors.New("the source has no interactions")

// ErrBadParameter: a job parameter is out of range or does not parse. The CLI reports it as a
// usage error.
var ErrBadParameter = errors.New("bad parameter")

// MissingColumnsError: the source lacks columns the job needs.
type MissingColumnsError struct {
	URI     string
	Missing []string
}

func (e *MissingColumnsError) Error() string {
	return fmt.Sprintf("%s has no column %s; the job needs the interaction columns (create the source with `lake create URI --schema interactions` and ingest into it)",
		e.URI, strings.Join(e.Missing, ", "))
}

func badParam(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadParameter, fmt.Sprintf(format, args...))
}
