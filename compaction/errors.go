package compaction

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidOptions is matched by every *OptionError.
var ErrInvalidOptions = errors.New("invalid options")

// OptionError reports options an operation cannot honour; nothing was written.
type OptionError struct {
	Option  string // e.g. "Where", "ZOrderBy", "Retention"
	Problem string
}

func (e *OptionError) Error() string { return fmt.Sprintf("%s: %s", e.Option, e.Problem) }

// Is makes an *OptionError match ErrInvalidOptions.
func (e *OptionError) Is(target error) bool { return target == ErrInvalidOptions }

// ErrFilesMissing is matched by every *MissingFilesError.
var ErrFilesMissing = errors.New("data files are missing")

// MissingFilesError reports that the files a version needs are gone from storage (vacuum
// deleted them after the retention), so that version cannot be restored.
type MissingFilesError struct {
	Version int64
	Paths   []string // as the log stores them, sorted
}

func (e *MissingFilesError) Error() string {
	p := e.Paths
	if len(p) > 3 {
		p = p[:3]
	}
	s := strings.Join(p, ", ")
	if len(e.Paths) > 3 {
		s += fmt.Sprintf(", and %d more", len(e.Paths)-3)
	}
	return fmt.Sprintf("version %d cannot be restored: %d of its data files are no longer in storage (%s), most likely deleted by vacuum after the retention; restore a newer version", e.Version, len(e.Paths), s)
}

// Is makes a *MissingFilesError match ErrFilesMissing.
func (e *MissingFilesError) Is(target error) bool { return target == ErrFilesMissing }
