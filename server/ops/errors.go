package ops

import "errors"

// ErrInvalidConfig matches every *ConfigError: a configuration that cannot run (an unknown key,
// a bad duration, a missing table, a job without outputs, ...).
var ErrInvalidConfig = errors.New("invalid configuration")
