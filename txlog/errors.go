package txlog

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lakehouse/lake/internal/delta"
)

// ErrConflict is the root of every retryable commit conflict: another writer committed the version
// this transaction wanted, and the transaction may be rebased and retried.
var ErrConflict = errors.New("txlog: concurrent commit")

// ErrVersionExists is returned by a CommitStore when the commit file already exists.
var ErrVersionExists = errors.New("txlog: version already exists")

// ErrNotATable means the location holds no _delta_log with a commit or checkpoint.
var ErrNotATable = errors.New("not a Delta table")

// ErrVersionNotFound means a requested version is not in the log (too old or not yet written).
var ErrVersionNotFound = errors.New("version not found")

// ConflictKind names the condition that made a transaction conflict with a winning commit.
type ConflictKind string

// Two kinds are retryable: retrying the whole operation (re-read the table, redo the work,
// commit again) may succeed, and the error matches errors.Is(err, ErrConflict). The others are
// terminal: a concurrent commit changed what this operation was based on, and retrying it
// unchanged cannot help.
const (
	// ConflictVersionTaken is retryable: a concurrent commit took the version, and rebasing
	// found nothing this transaction depends on.
	ConflictVersionTaken ConflictKind = "version taken"
	// ConflictRetriesExhausted is retryable: every version this commit rebased onto was taken
	// by another writer until LogOptions.MaxCommitAttempts ran out. Nothing this transaction
	// depends on changed (a change would have been a terminal kind), so the operation may be
	// retried as a whole, preferably after a backoff: the table is under heavy contention.
	ConflictRetriesExhausted ConflictKind = "retries exhausted"

	ConflictProtocolChanged ConflictKind = "protocol changed"                             // terminal
	ConflictMetadataChanged ConflictKind = "metadata changed"                             // terminal
	ConflictConcurrentTxn   ConflictKind = "concurrent transaction for the same appId"    // terminal
	ConflictDeleteRead      ConflictKind = "a file this transaction read was removed"     // terminal
	ConflictDeleteDelete    ConflictKind = "a file this transaction removes was removed"  // terminal
	ConflictAppendedToRead  ConflictKind = "files were added where this transaction read" // terminal
)

// ConflictError reports a commit that lost to a concurrent one. Version is the winning version
// that caused it (for ConflictRetriesExhausted, the last version taken by another writer).
// Retryable conflicts (Kind ConflictVersionTaken, ConflictRetriesExhausted) match
// errors.Is(err, ErrConflict) and report Retryable; terminal ones do neither.
type ConflictError struct {
	Version int64
	Kind    ConflictKind
	Paths   []string
}

func (e *ConflictError) Error() string {
	s := fmt.Sprintf("txlog: commit conflicts with version %d: %s", e.Version, e.Kind)
	if len(e.Paths) > 0 {
		p := e.Paths
		if len(p) > 3 {
			p = p[:3]
		}
		s += " (" + strings.Join(p, ", ")
		if len(e.Paths) > 3 {
			s += fmt.Sprintf(", and %d more", len(e.Paths)-3)
		}
		s += ")"
	}
	switch e.Kind {
	case ConflictVersionTaken, ConflictRetriesExhausted:
		s += "; retry the operation"
	default:
		s += "; re-read the table and redo the operation"
	}
	return s
}

// Retryable reports whether retrying the whole operation (re-read, redo, commit) may succeed:
// true for ConflictVersionTaken and ConflictRetriesExhausted, false for the terminal kinds.
func (e *ConflictError) Retryable() bool {
	return e.Kind == ConflictVersionTaken || e.Kind == ConflictRetriesExhausted
}

// Is makes retryable conflicts match ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict && e.Retryable() }

// UnsupportedFeatureError reports a table that needs a protocol feature this engine does not
// implement. Protocol.CheckRead and CheckWrite return it.
type UnsupportedFeatureError = delta.UnsupportedFeatureError

// ErrEmptyLogFile is the cause of a *CorruptError for a commit file with no content (zero bytes
// or blank lines only): every commit holds at least one action, so an empty file is a torn or
// truncated write, never an empty commit.
var ErrEmptyLogFile = errors.New("the file is empty, but a commit holds at least one action")

// CorruptError reports a log file that cannot be decoded: an empty commit file (its Err matches
// ErrEmptyLogFile), a line that is not a JSON object, or an action that does not parse.
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string { return fmt.Sprintf("corrupt log file %s: %v", e.Path, e.Err) }
func (e *CorruptError) Unwrap() error { return e.Err }

// CommitUnknownError reports a commit whose outcome could not be settled: the put failed in a way
// that does not say whether the file was written, and reading it back failed too.
type CommitUnknownError struct {
	Version int64
	Err     error
}

func (e *CommitUnknownError) Error() string {
	return fmt.Sprintf("txlog: outcome of commit %d is unknown (%v); read the table's history to see whether it landed", e.Version, e.Err)
}
func (e *CommitUnknownError) Unwrap() error { return e.Err }
