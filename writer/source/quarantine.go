package source

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/lakehouse/lake/txlog"
)

// QuarantinePartitionColumn is the quarantine table's partition column.
const QuarantinePartitionColumn = "ingest_date"

// QuarantineSchema is the schema of a quarantine table (shared/CONTRACT.md): the raw record as
// read, where it came from, why it was refused, and its user_id when it could be read (so one
// user's records can be erased there too).
func QuarantineSchema() *txlog.StructType {
	return &txlog.StructType{Fields: []txlog.StructField{
		{Name: "raw", Type: txlog.String, Nullable: true},
		{Name: "source", Type: txlog.String, Nullable: true},
		{Name: "file", Type: txlog.String, Nullable: true},
		{Name: "line", Type: txlog.Long, Nullable: true},
		{Name: "byte_offset", Type: txlog.Long, Nullable: true},
		{Name: "reason", Type: txlog.String, Nullable: true},
		{Name: "user_id", Type: txlog.String, Nullable: true},
		{Name: "ingested_at", Type: txlog.Timestamp, Nullable: true},
		{Name: "ingest_date", Type: txlog.Date, Nullable: true},
	}}
}

// QuarantineURI is the default quarantine table of the table at uri: the sibling table
// URI_quarantine, formed on the URI's path and keeping its query string
// (s3://b/events?region=x gives s3://b/events_quarantine?region=x).
func QuarantineURI(uri string) (string, error) { return SiblingURI(uri, "_quarantine") }

// SiblingURI appends suffix to the last element of uri's path, keeping the scheme, host and query.
func SiblingURI(uri, suffix string) (string, error) {
	if !strings.Contains(uri, "://") { // a bare local path
		p := strings.TrimRight(uri, "/")
		if p == "" || p == "." || p == ".." {
			return "", fmt.Errorf("cannot derive a sibling table of %q: name the table by its folder", uri)
		}
		return p + suffix, nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("table URI %q: %w", uri, err)
	}
	p := strings.TrimRight(u.Path, "/")
	if p == "" && u.Host == "" {
		return "", fmt.Errorf("cannot derive a sibling table of %q: it has no path or bucket name", uri)
	}
	switch {
	case p == "" && u.Scheme == "mem":
		u.Host += suffix // mem://name -> mem://name_quarantine
	case p == "":
		return "", fmt.Errorf("the table %q is at the root of its bucket, so it has no sibling: name the other table's URI", uri)
	default:
		u.Path = p + suffix
		u.RawPath = ""
	}
	return u.String(), nil
}
