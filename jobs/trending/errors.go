package trending

import (
	"errors"
	"fmt"

	"github.com/lakehouse/lake/jobs"
)

// ErrBadParameter is jobs.ErrBadParameter: a parameter out of range. The CLI reports it as a
// usage error.
var ErrBadParameter = jobs.ErrBadParameter

// ErrEmptySource is jobs.ErrEmptySource: no events at the pinned version.
var ErrEmptySource = jobs.ErrEmptySource

// ErrNoClosedWindow: the source has events, but none of their windows has closed yet (the
// newest event is not past the first window's end plus the allowed lateness).
var ErrNoClosedWindow = errors.New("no window has closed yet")

func badParam(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadParameter, fmt.Sprintf(format, args...))
}
