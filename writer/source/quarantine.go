package source

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/lakehouse/lake/internal/units"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
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

// quarantine appends a refused record.
func (s *Standardizer) quarantine(raw []byte, pos Position, reason, user string) {
	s.count.Quarantined++
	b := s.qb
	b.Field(0).(*array.StringBuilder).Append(rawText(raw))
	appendStr(b.Field(1).(*array.StringBuilder), s.source)
	file := pos.File
	if file == "" {
		file = s.opts.File
	}
	appendStr(b.Field(2).(*array.StringBuilder), file)
	if pos.Line > 0 {
		b.Field(3).(*array.Int64Builder).Append(pos.Line)
		b.Field(4).(*array.Int64Builder).Append(pos.Offset)
	} else {
		b.Field(3).AppendNull()
		b.Field(4).AppendNull()
	}
	b.Field(5).(*array.StringBuilder).Append(rawText([]byte(reason)))
	appendStr(b.Field(6).(*array.StringBuilder), user)
	now := s.opts.Now().UTC()
	b.Field(7).(*array.TimestampBuilder).Append(arrow.Timestamp(now.UnixMicro()))
	b.Field(8).(*array.Date32Builder).Append(arrow.Date32(units.FloorDiv(now.UnixMicro(), 86_400_000_000)))
}

func appendStr(b *array.StringBuilder, v string) {
	if v == "" {
		b.AppendNull()
	} else {
		b.Append(v)
	}
}

// rawText is the quarantined record as text: invalid UTF-8 bytes are written as \xNN so that
// nothing is lost and the column stays valid UTF-8, and a record longer than 64 KiB is cut
// (with a note of how much was cut).
func rawText(raw []byte) string {
	cut := 0
	if len(raw) > maxRawBytes {
		cut = len(raw) - maxRawBytes
		raw = raw[:maxRawBytes]
	}
	var out string
	if utf8.Valid(raw) {
		out = string(raw)
	} else {
		var sb strings.Builder
		for len(raw) > 0 {
			r, n := utf8.DecodeRune(raw)
			if r == utf8.RuneError && n == 1 {
				fmt.Fprintf(&sb, `\x%02x`, raw[0])
			} else {
				sb.Write(raw[:n])
			}
			raw = raw[n:]
		}
		out = sb.String()
	}
	if cut > 0 {
		out += fmt.Sprintf("…[%d more bytes]", cut)
	}
	return out
}

// Flush returns the rows and quarantined records since the last Flush and starts a new batch.
func (s *Standardizer) Flush() (*Batch, error) {
	b := &Batch{Counts: s.count}
	if s.n > 0 {
		rec := s.bld.NewRecordBatch()
		if len(s.extra) > 0 {
			rec = s.withExtra(rec)
		}
		if dups := s.seen.addBatch(s.hashes); len(dups) > 0 {
			var err error
			if rec, err = dropRows(s.mem, rec, dups); err != nil {
				s.bld.Release()
				s.qb.Release()
				s.reset()
				return nil, err
			}
			b.Counts.Written -= int64(len(dups))
			b.Counts.Duplicate += int64(len(dups))
		}
		if rec.NumRows() > 0 {
			b.Rows = rec
		} else {
			rec.Release()
		}
	}
	if s.count.Quarantined > 0 {
		b.Quarantine = s.qb.NewRecordBatch()
	}
	s.bld.Release()
	s.qb.Release()
	s.count = Counts{}
	s.reset()
	return b, nil
}
