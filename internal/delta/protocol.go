package delta

import (
	"fmt"
	"slices"
	"strings"
)

// Reader features this engine honours when reading.
var supportedReaderFeatures = map[string]bool{
	"columnMapping":       true,
	"deletionVectors":     true,
	"timestampNtz":        true,
	"v2Checkpoint":        true,
	"vacuumProtocolCheck": true,

	// Type Widening: files written before a column was widened are read as its current type.
	"typeWidening":         true,
	"typeWidening-preview": true,
}

// Writer features this engine can write under. Features that only constrain data which the
// table does not use (generated or identity columns) are checked against the schema instead.
var supportedWriterFeatures = map[string]bool{
	"appendOnly":          true,
	"invariants":          true,
	"checkConstraints":    true,
	"changeDataFeed":      true,
	"columnMapping":       true,
	"deletionVectors":     true,
	"timestampNtz":        true,
	"domainMetadata":      true,
	"inCommitTimestamp":   true,
	"v2Checkpoint":        true,
	"vacuumProtocolCheck": true,
	"generatedColumns":    true, // refused below when a column has a generation expression
	"identityColumns":     true, // refused below when a column is an identity column

	// Type Widening: writes use the current types; MergeSchema records widenings.
	"typeWidening":         true,
	"typeWidening-preview": true,
}

// MaxReaderVersion and MaxWriterVersion are the highest protocol versions this engine knows.
const (
	MaxReaderVersion = 3
	MaxWriterVersion = 7
)

// CheckRead returns an *UnsupportedFeatureError when the protocol needs a reader feature this
// engine does not implement.
func (p Protocol) CheckRead() error {
	for _, f := range p.ReaderFeatures {
		if !supportedReaderFeatures[f] {
			return &UnsupportedFeatureError{Feature: f}
		}
	}
	if p.MinReaderVersion > MaxReaderVersion {
		return &UnsupportedFeatureError{Feature: fmt.Sprintf("readerVersion %d", p.MinReaderVersion)}
	}
	return nil
}

// CheckWrite returns an *UnsupportedFeatureError when writing the table needs a writer feature
// this engine does not implement. schema may be nil.
func (p Protocol) CheckWrite(schema *StructType) error {
	if err := p.CheckRead(); err != nil {
		return err
	}
	for _, f := range p.WriterFeatures {
		if !supportedWriterFeatures[f] {
			return &UnsupportedFeatureError{Feature: f, Write: true}
		}
	}
	if p.MinWriterVersion > MaxWriterVersion {
		return &UnsupportedFeatureError{Feature: fmt.Sprintf("writerVersion %d", p.MinWriterVersion), Write: true}
	}
	if schema != nil {
		var bad string
		walkFields(schema, func(f StructField) {
			for k := range f.Metadata {
				switch {
				case k == "delta.generationExpression":
					bad = "generatedColumns"
				case strings.HasPrefix(k, "delta.identity."):
					bad = "identityColumns"
				}
			}
		})
		if bad != "" {
			return &UnsupportedFeatureError{Feature: bad, Write: true}
		}
	}
	return nil
}

// HasReaderFeature reports whether the table uses reader feature f, by feature list (reader
// version 3) or implied by a legacy reader version (2 implies columnMapping).
func (p Protocol) HasReaderFeature(f string) bool {
	if p.MinReaderVersion >= 3 {
		return slices.Contains(p.ReaderFeatures, f)
	}
	return p.MinReaderVersion == 2 && f == "columnMapping"
}

// HasWriterFeature reports whether the table uses writer feature f, by feature list (writer
// version 7) or implied by a legacy writer version.
func (p Protocol) HasWriterFeature(f string) bool {
	if p.MinWriterVersion >= 7 {
		return slices.Contains(p.WriterFeatures, f)
	}
	implied := map[string]int{"appendOnly": 2, "invariants": 2, "checkConstraints": 3,
		"changeDataFeed": 4, "generatedColumns": 4, "columnMapping": 5, "identityColumns": 6}
	v, ok := implied[f]
	return ok && p.MinWriterVersion >= v
}

func walkFields(t DataType, fn func(StructField)) {
	switch v := t.(type) {
	case *StructType:
		for _, f := range v.Fields {
			fn(f)
			walkFields(f.Type, fn)
		}
	case *ArrayType:
		walkFields(v.ElementType, fn)
	case *MapType:
		walkFields(v.KeyType, fn)
		walkFields(v.ValueType, fn)
	}
}
