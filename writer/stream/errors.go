package stream

import (
	"context"
	"errors"

	"github.com/lakehouse/lake/txlog"
)

// ErrNameInUse means another committer with the same name committed to the table while this one
// ran: names must be unique among running committers. The batch is not acked.
var ErrNameInUse = errors.New("stream: committer name in use")

// retryable reports whether a commit error may pass on a later attempt: retryable conflicts,
// unknown outcomes and storage errors are; terminal conflicts, a name in use and a cancelled
// context are not.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNameInUse) {
		return false
	}
	var ce *txlog.ConflictError
	if errors.As(err, &ce) {
		return ce.Retryable()
	}
	var ue *txlog.UnsupportedFeatureError
	return !errors.As(err, &ue)
}

// nameConflict reports whether err is a commit conflict with a committer of the same appId.
func nameConflict(err error) bool {
	var ce *txlog.ConflictError
	return errors.As(err, &ce) && ce.Kind == txlog.ConflictConcurrentTxn
}
