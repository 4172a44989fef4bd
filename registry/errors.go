package registry

import "errors"

// ErrNoRegistry: the prefix has no registry table yet (no job run registered there).
var ErrNoRegistry = errors.New("no model registry")

// ErrUnknownRun: no run with that id is registered.
var ErrUnknownRun = errors.New("unknown run")

// ErrNoLiveRun: runs of the job that writes a table are registered, but none is live (they are
// candidates or rejected); nothing may be served until one is promoted.
var ErrNoLiveRun = errors.New("no live run")

// ErrNoRollbackTarget: the job has no earlier live run to roll back to.
var ErrNoRollbackTarget = errors.New("no run to roll back to")

// ErrBadState: the change does not apply to the run's current state (e.g. promoting the live run).
var ErrBadState = errors.New("the run is not in a state this change applies to")
