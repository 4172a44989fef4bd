package reader

import (
	"errors"
	"fmt"

	"github.com/lakehouse/lake/txlog"
)

// ErrInvalidFilter is matched by every *FilterError.
var ErrInvalidFilter = errors.New("invalid filter")

// FilterError reports a filter that cannot be applied to the table: an unknown column, an
// operator the column's type does not support, or a value that does not parse as the column's
// type. Callers (the CLI) report it as a usage error.
type FilterError struct {
	Expr   string // the filter as written, when known
	Column string
	Value  string // the offending value, "" when the problem is not a value
	Type   string // the column's Delta type, "" when the column is unknown
	Reason string
}

func (e *FilterError) Error() string {
	where := e.Expr
	if where == "" {
		where = e.Column
	}
	switch {
	case e.Value != "" && e.Type != "":
		return fmt.Sprintf("filter %q: value %q is not a valid %s for column %q: %s", where, e.Value, e.Type, e.Column, e.Reason)
	case e.Column != "" && e.Type != "":
		return fmt.Sprintf("filter %q: column %q (%s): %s", where, e.Column, e.Type, e.Reason)
	case e.Column != "":
		return fmt.Sprintf("filter %q: column %q: %s", where, e.Column, e.Reason)
	}
	return fmt.Sprintf("filter %q: %s", where, e.Reason)
}

// Is makes a FilterError match ErrInvalidFilter.
func (e *FilterError) Is(target error) bool { return target == ErrInvalidFilter }

// FileError reports a data file or deletion vector file that cannot be read as the log
// describes it. Path is the file as the table stores it (URL-decoded).
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return fmt.Sprintf("data file %s: %v", e.Path, e.Err) }
func (e *FileError) Unwrap() error { return e.Err }

// UnsupportedError reports something in a table or one of its files that the reader cannot
// honour (a location, a type, an encoding). It unwraps to a *txlog.UnsupportedFeatureError
// naming the feature, so callers handle it like a table's unsupported reader feature.
type UnsupportedError struct {
	Feature string // what is not supported, e.g. "column mapping mode \"foo\""
	Detail  string // where it was met
}

func (e *UnsupportedError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("lake cannot read this: %s is not supported", e.Feature)
	}
	return fmt.Sprintf("lake cannot read this: %s is not supported (%s)", e.Feature, e.Detail)
}

func (e *UnsupportedError) Unwrap() error {
	return &txlog.UnsupportedFeatureError{Feature: e.Feature}
}

// unsupported returns the error for a reader feature this package cannot honour.
func unsupported(feature, detail string) error {
	return &UnsupportedError{Feature: feature, Detail: detail}
}
