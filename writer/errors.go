package writer

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by calls on a Writer or FileWriter after Close or Abort.
var ErrClosed = errors.New("writer: already closed")

// ErrSchemaMismatch is the root of every *SchemaError: errors.Is(err, ErrSchemaMismatch).
var ErrSchemaMismatch = errors.New("record does not fit the table schema")

// ErrOutsideWhere reports a row of an OverwriteWhere write whose partition is not one the write
// replaces.
var ErrOutsideWhere = errors.New("row outside the partitions being replaced")

// SchemaError reports a record that does not fit the table: a column of another type, a column
// the table lacks, a missing non-null column, or a null in a non-null column. The record is
// refused as a whole; the writer stays usable.
type SchemaError struct {
	// Column is the column's logical name; nested fields are dotted (a.b).
	Column string
	// TableType and GivenType are the column's Delta type in the table and in the input ("" when
	// the table or the input has no such column).
	TableType string
	GivenType string
	// Problem says what is wrong.
	Problem string
}

func (e *SchemaError) Error() string {
	s := fmt.Sprintf("column %q: %s", e.Column, e.Problem)
	if e.TableType != "" || e.GivenType != "" {
		tt, gt := e.TableType, e.GivenType
		if tt == "" {
			tt = "(none)"
		}
		if gt == "" {
			gt = "(none)"
		}
		s += fmt.Sprintf(" (table type %s, given type %s)", tt, gt)
	}
	return s
}

// Is makes every SchemaError match ErrSchemaMismatch.
func (e *SchemaError) Is(target error) bool { return target == ErrSchemaMismatch }

// CommitError reports a commit that failed after data files were written. The files are not
// part of the table: no version of the log references them, so no reader sees them, and they
// can be deleted (lake has no command that does it yet). Err is the commit's error: match it with errors.Is(err,
// txlog.ErrConflict) (retryable) or errors.As(err, **txlog.ConflictError), ...
type CommitError struct {
	// Files are the object keys of the data files written but not committed.
	Files []string
	Err   error
}

func (e *CommitError) Error() string {
	return fmt.Sprintf("commit failed: %v; %d data files were written but not committed: no version references them, so they are not part of the table and can be deleted", e.Err, len(e.Files))
}

func (e *CommitError) Unwrap() error { return e.Err }
