package replica

import (
	"errors"
	"fmt"
)

// ErrNotEmpty matches the error of Clone into a destination that already holds objects.
var ErrNotEmpty = errors.New("replica: destination is not empty")

// ErrDiverged matches a *DivergedError.
var ErrDiverged = errors.New("replica: destination diverged from source")

// DivergedError reports a destination whose log is not a prefix of the source's: its Version
// differs from the source's version of that number, or it is ahead of the source, or it is
// another table. Sync never overwrites it.
type DivergedError struct {
	Src, Dst string
	Version  int64
	Reason   string
}

func (e *DivergedError) Error() string {
	return fmt.Sprintf("%s is not a replica of %s: %s at version %d; it was written by someone else or is another table, and sync never overwrites it: sync into an empty location, or clone", e.Dst, e.Src, e.Reason, e.Version)
}

// Is makes a DivergedError match ErrDiverged.
func (e *DivergedError) Is(target error) bool { return target == ErrDiverged }

// MissingFileError reports a file that the source's log needs but the source store no longer
// holds: it was vacuumed (possibly while the copy ran) or the source is damaged.
type MissingFileError struct {
	Src  string
	Path string // as the log records it
	// Version is the source version whose commit (or snapshot) needs the file.
	Version int64
	// Latest is the source's latest version: a clone of it needs only files that vacuum keeps.
	Latest int64
	Err    error
}

func (e *MissingFileError) Error() string {
	return fmt.Sprintf("file %s (needed by version %d) is gone from %s (vacuumed?), so version %d cannot be copied; clone the latest version into a new location instead: lake clone %s NEWDST --version %d",
		e.Path, e.Version, e.Src, e.Version, e.Src, e.Latest)
}

func (e *MissingFileError) Unwrap() error { return e.Err }

// VerifyError reports a copied file whose size or checksum at the destination differs from the
// source's. The bad copy is deleted; running again copies it anew.
type VerifyError struct {
	Path string
	// What failed: "size", or the checksum, "MD5", "CRC32C" or "CRC32" (checked in that
	// order; the first that differs is reported).
	What string
	// Src and Dst are the two values that differ (checksums in hex): of the source store, the
	// bytes sent, or the destination store, in that order of preference for Src.
	Src, Dst string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("copy of %s failed verification: %s at the source is %s, at the destination %s (the copy was removed; run again)", e.Path, e.What, e.Src, e.Dst)
}
