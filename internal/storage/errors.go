package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"gocloud.dev/gcerrors"

	"github.com/lakehouse/lake/txlog"
)

// This file is the one place where errors from gocloud drivers and the local filesystem are
// translated: into gocloud error codes for the Bucket, and into the CommitStore contract for
// Commits.

// errExists reports that an exclusive create found an object at its key.
var errExists = errors.New("object already exists")

// errInvalidKey reports a key the local filesystem cannot hold as the same file that fileblob
// would read (see localFS.path).
var errInvalidKey = errors.New("invalid key")

// errLocationClosed reports a call on a closed Location.
var errLocationClosed = errors.New("storage: location is closed")

// codedError carries the gocloud code of an error that came out of an inner *blob.Bucket, so
// that the outer *blob.Bucket reports the same code without repeating the inner message.
type codedError struct {
	code gcerrors.ErrorCode
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// fromBlob strips the *gcerr.Error that an inner *blob.Bucket wrapped around a driver error,
// keeping its code. The outer *blob.Bucket wraps the result again, with the key in the message.
func fromBlob(err error) error {
	if err == nil {
		return nil
	}
	code := gcerrors.Code(err)
	// *gcerr.Error is internal to gocloud; it unwraps to [driver error, coded sentinel].
	if m, ok := err.(interface{ Unwrap() []error }); ok && code != gcerrors.OK {
		if errs := m.Unwrap(); len(errs) > 0 && errs[0] != nil {
			return &codedError{code: code, err: errs[0]}
		}
	}
	return err
}

// errorCode is the driver's ErrorCode: the code of an error returned by the wrapping driver.
func errorCode(err error) gcerrors.ErrorCode {
	var ce *codedError
	switch {
	case errors.As(err, &ce):
		return ce.code
	case errors.Is(err, errExists):
		return gcerrors.FailedPrecondition
	case errors.Is(err, errInvalidKey):
		return gcerrors.InvalidArgument
	case errors.Is(err, errLocationClosed):
		return gcerrors.FailedPrecondition
	case errors.Is(err, fs.ErrNotExist):
		return gcerrors.NotFound
	case errors.Is(err, fs.ErrPermission):
		return gcerrors.PermissionDenied
	case errors.Is(err, context.Canceled):
		return gcerrors.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return gcerrors.DeadlineExceeded
	}
	return gcerrors.Code(err)
}

// commitError translates the error of a conditional Upload into the txlog.CommitStore contract:
// an existing object wraps txlog.ErrVersionExists, anything else is an unknown outcome.
func commitError(key string, err error) error {
	switch gcerrors.Code(err) {
	case gcerrors.FailedPrecondition, gcerrors.AlreadyExists:
		// S3 and GCS answer 412, Azure 409 BlobAlreadyExists, memblob and the local store their
		// own precondition error: all mean the object was there and nothing was written.
		return fmt.Errorf("storage: %s already exists: %w", key, txlog.ErrVersionExists)
	}
	return fmt.Errorf("storage: creating %s: outcome unknown: %w", key, err)
}

// keyError reports an invalid key, naming it.
func keyError(key, why string) error {
	return fmt.Errorf("storage: key %q %s: %w", key, why, errInvalidKey)
}

func contentTypeFor(key string) string {
	switch path.Ext(key) {
	case ".json":
		return "application/json"
	case ".parquet":
		return "application/vnd.apache.parquet"
	}
	return "application/octet-stream"
}
