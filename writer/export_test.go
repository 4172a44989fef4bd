package writer

import "context"

// SetEncodeHook makes the background encoder of w call hook before each record it encodes; an
// error from hook fails the encoding of that record.
func SetEncodeHook(w *Writer, hook func(ctx context.Context) error) { w.fw.encodeHook = hook }

// QueueDepth is how many records wait for the encoder at most.
const QueueDepth = queueDepth

// Gather is gather, the Take of split.
var Gather = gather
