package table

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lakehouse/lake/txlog"
)

// ErrInvalidOptions is the root of every *OptionError: errors.Is(err, ErrInvalidOptions) tells a
// caller that the table description itself is wrong (a mistake to report to whoever gave it),
// not the store.
var ErrInvalidOptions = errors.New("invalid table description")

// OptionError reports a schema, partition column or table property that Create refuses. Nothing
// is written (a local directory is not even created) when Create returns one.
type OptionError struct {
	// Option names what is wrong: a property key ("delta.checkpointInterval"), "partition
	// column" or "schema".
	Option string
	// Value is the value given, when there is one.
	Value string
	// Problem says what is wrong and what is accepted.
	Problem string
}

func (e *OptionError) Error() string {
	if e.Value != "" || strings.HasPrefix(e.Option, "delta.") {
		return fmt.Sprintf("%s %q: %s", e.Option, e.Value, e.Problem)
	}
	return fmt.Sprintf("%s: %s", e.Option, e.Problem)
}

// Is makes every OptionError match ErrInvalidOptions.
func (e *OptionError) Is(target error) bool { return target == ErrInvalidOptions }

// propertyCheck validates one known table property's value; it returns what is accepted when
// the value is not.
type propertyCheck func(v string) (problem string)

func boolProperty(v string) string {
	if v == "true" || v == "false" {
		return ""
	}
	return "want true or false"
}

func positiveIntProperty(v string) string {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
		return ""
	}
	return "want a positive integer"
}

// oneOfProperty accepts one of vals, ignoring case when fold is set.
func oneOfProperty(fold bool, vals ...string) propertyCheck {
	return func(v string) string {
		for _, ok := range vals {
			if v == ok || fold && strings.EqualFold(v, ok) {
				return ""
			}
		}
		return "want one of " + strings.Join(vals, ", ")
	}
}

func intervalProperty(v string) string {
	if d, err := txlog.ParseInterval(v); err == nil && d >= 0 {
		return ""
	}
	return `want an interval such as "interval 7 days" or "168h"`
}

// sizeProperty accepts what the writer reads delta.targetFileSize as: a positive number of bytes
// with an optional unit (b, k, kb, m, mb, g, gb; binary multiples).
func sizeProperty(v string) string {
	t := strings.ToLower(strings.TrimSpace(v))
	for _, u := range []string{"gb", "mb", "kb", "g", "m", "k", "b"} {
		if s, ok := strings.CutSuffix(t, u); ok {
			t = strings.TrimSpace(s)
			break
		}
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil && n > 0 {
		return ""
	}
	return "want a positive number of bytes, optionally with a unit (128mb)"
}

// knownProperties are the delta.* table properties whose values Create checks: the ones lake
// reads, and the common ones other engines read, so that a table lake creates does not carry a
// value Spark or delta-rs would refuse or misread. Other keys (delta.constraints.*, keys of
// newer Delta versions, user keys) are kept as given.
var knownProperties = map[string]propertyCheck{
	"delta.appendOnly":                    boolProperty,
	"delta.checkpointInterval":            positiveIntProperty,
	"delta.checkpointPolicy":              oneOfProperty(false, "classic", "v2"),
	"delta.columnMapping.mode":            oneOfProperty(false, "none", "name", "id"),
	"delta.dataSkippingNumIndexedCols":    numIndexedColsProperty,
	"delta.enableInCommitTimestamps":      boolProperty,
	"delta.enableDeletionVectors":         boolProperty,
	"delta.enableChangeDataFeed":          boolProperty,
	"delta.enableExpiredLogCleanup":       boolProperty,
	"delta.checkpoint.writeStatsAsJson":   boolProperty,
	"delta.checkpoint.writeStatsAsStruct": boolProperty,
	"delta.logRetentionDuration":          intervalProperty,
	"delta.deletedFileRetentionDuration":  intervalProperty,
	"delta.checkpointRetentionDuration":   intervalProperty,
	"delta.targetFileSize":                sizeProperty,
	"delta.parquet.compression.codec":     oneOfProperty(true, "zstd", "snappy", "gzip", "lz4_raw", "lz4raw", "uncompressed", "none"),
}

func numIndexedColsProperty(v string) string {
	if n, err := strconv.ParseInt(v, 10, 32); err == nil && n >= -1 {
		return ""
	}
	return "want -1 (every column) or a number of columns from 0 up"
}

// validateCreate checks what Create is given before anything is written.
func validateCreate(schema *txlog.StructType, o *CreateOptions) error {
	if schema == nil || len(schema.Fields) == 0 {
		return &OptionError{Option: "schema", Problem: "the schema has no columns"}
	}
	seen := map[string]bool{}
	for _, f := range schema.Fields {
		if f.Name == "" {
			return &OptionError{Option: "schema", Problem: "a column has an empty name"}
		}
		if seen[f.Name] {
			return &OptionError{Option: "schema", Problem: fmt.Sprintf("column %q appears twice in the schema", f.Name)}
		}
		seen[f.Name] = true
	}
	parts := map[string]bool{}
	for _, c := range o.PartitionColumns {
		f, ok := schema.Field(c)
		if !ok {
			return &OptionError{Option: "partition column", Value: c,
				Problem: fmt.Sprintf("not in the schema (columns: %v)", fieldNames(schema))}
		}
		if parts[c] {
			return &OptionError{Option: "partition column", Value: c, Problem: "listed twice; give each partition column once"}
		}
		parts[c] = true
		switch f.Type.(type) {
		case *txlog.StructType, *txlog.ArrayType, *txlog.MapType:
			return &OptionError{Option: "partition column", Value: c,
				Problem: fmt.Sprintf("has type %s; partition columns must be of a primitive type", f.Type.TypeName())}
		}
	}
	if len(parts) > 0 && len(parts) == len(schema.Fields) {
		// The data files would have no columns; Spark refuses this too.
		return &OptionError{Option: "partition column", Problem: "every column is a partition column; leave at least one data column"}
	}
	for k, v := range o.Properties {
		check, ok := knownProperties[k]
		if !ok {
			// A known key in other letter cases would be kept and silently ignored.
			for known := range knownProperties {
				if strings.EqualFold(k, known) {
					return &OptionError{Option: k, Value: v, Problem: fmt.Sprintf("table property keys are case-sensitive: did you mean %s?", known)}
				}
			}
			continue
		}
		if p := check(v); p != "" {
			return &OptionError{Option: k, Value: v, Problem: p}
		}
	}
	return nil
}
