package writer

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"

	"github.com/lakehouse/lake/txlog"
)

// Mode says what a write does with the rows already in the table.
type Mode int

const (
	// Append adds the new rows (a blind append: it reads nothing and conflicts with nothing but
	// protocol and metadata changes).
	Append Mode = iota
	// Overwrite replaces every row of the table.
	Overwrite
	// OverwriteWhere replaces the rows of the partitions that Options.Where selects, and refuses
	// new rows outside them (Delta's replaceWhere on partition columns).
	OverwriteWhere
)

func (m Mode) String() string {
	switch m {
	case Append:
		return "Append"
	case Overwrite:
		return "Overwrite"
	case OverwriteWhere:
		return "OverwriteWhere"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode reads a mode name: "append", "overwrite" or "overwrite-where" (any case; "-" and
// "_" are ignored, so "overwrite_where" and "OverwriteWhere" work too).
func ParseMode(s string) (Mode, error) {
	switch strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(strings.TrimSpace(s))) {
	case "append", "":
		return Append, nil
	case "overwrite":
		return Overwrite, nil
	case "overwritewhere", "replacewhere":
		return OverwriteWhere, nil
	}
	return 0, fmt.Errorf("unknown write mode %q (want append, overwrite or overwrite-where)", s)
}

// Default sizes.
const (
	DefaultTargetFileSize   = 128 << 20
	DefaultRowGroupRows     = 128 << 10
	DefaultRowGroupBytes    = 64 << 20
	DefaultMaxOpenFiles     = 64
	DefaultMaxBufferedBytes = 256 << 20
	DefaultCompression      = "zstd"
)

// Options configure a write. A nil *Options is the defaults; New and NewFileWriter copy the
// options, so the caller may reuse them.
type Options struct {
	// Mode is Append (the default), Overwrite or OverwriteWhere.
	Mode Mode
	// Where selects the partitions OverwriteWhere replaces: conditions on partition columns,
	// ANDed. It must be empty for the other modes.
	Where []PartitionPredicate

	// MergeSchema adds the input's columns that the table does not have (top-level columns and
	// struct fields) to the table schema, as nullable columns, in the same commit, and widens
	// the columns whose input type is a supported widening of theirs (see the package
	// documentation, "Schema"). Without it such a column is an error.
	MergeSchema bool

	// TargetFileSize is the size at which a data file is finished and the next one started.
	// Default: the table property delta.targetFileSize, else 128 MiB.
	TargetFileSize int64
	// Compression is the Parquet codec: "zstd", "snappy", "gzip", "lz4_raw" or "uncompressed".
	// Default: the table property delta.parquet.compression.codec, else "zstd".
	Compression string
	// RowGroupRows is the most rows in one Parquet row group (default 131072): small enough for
	// row-group skipping to pay, large enough to compress well.
	RowGroupRows int64
	// RowGroupBytes closes a row group early once its compressed size reaches it (default 64 MiB).
	RowGroupBytes int64
	// MaxOpenFiles bounds how many data files (one per partition at most) are open at once; when a
	// write needs another, the least recently used one is finished. Default 64.
	MaxOpenFiles int
	// MaxBufferedBytes bounds the compressed row-group data buffered in memory across the open
	// files; past it, the largest row groups are flushed to storage. Default 256 MiB.
	MaxBufferedBytes int64
	// Parallelism bounds the goroutines that encode the partitions of one record in parallel,
	// and those that finish open files at Close (default GOMAXPROCS). The caller's goroutine
	// prepares the next record meanwhile.
	Parallelism int

	// Operation is commitInfo.operation (default "WRITE"). OperationParameters are added to the
	// ones the writer records (mode, partitionBy, predicate) and win over them.
	Operation           string
	OperationParameters map[string]any
	// OperationMetrics are added to the metrics the writer records (numFiles, numOutputRows,
	// numOutputBytes, ...) and win over them.
	OperationMetrics map[string]any
	// UserMetadata is commitInfo.userMetadata.
	UserMetadata string

	// AppID and AppVersion make the write idempotent: the commit records that AppID reached
	// AppVersion (a txn action), and a write whose AppVersion is not above the version the table
	// has recorded for AppID is skipped (Result.Skipped).
	AppID      string
	AppVersion int64

	// Snapshot is the snapshot to write against; nil loads the latest.
	Snapshot *txlog.Snapshot

	// Allocator allocates the Arrow and Parquet buffers (default memory.DefaultAllocator).
	Allocator memory.Allocator
}

// resolve returns a copy of o with defaults filled from the table configuration, validated.
func (o *Options) resolve(config map[string]string) (*Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	r.Where = slices.Clone(r.Where)
	r.OperationParameters = maps.Clone(r.OperationParameters)
	r.OperationMetrics = maps.Clone(r.OperationMetrics)
	if r.TargetFileSize == 0 {
		r.TargetFileSize = DefaultTargetFileSize
		if s := config["delta.targetFileSize"]; s != "" {
			n, err := parseBytes(s)
			if err != nil {
				return nil, fmt.Errorf("table property delta.targetFileSize=%q: %w", s, err)
			}
			r.TargetFileSize = n
		}
	}
	if r.Compression == "" {
		r.Compression = DefaultCompression
		if s := config["delta.parquet.compression.codec"]; s != "" {
			r.Compression = s
		}
	}
	r.Compression = strings.ToLower(r.Compression)
	if r.RowGroupRows == 0 {
		r.RowGroupRows = DefaultRowGroupRows
	}
	if r.RowGroupBytes == 0 {
		r.RowGroupBytes = DefaultRowGroupBytes
	}
	if r.MaxOpenFiles == 0 {
		r.MaxOpenFiles = DefaultMaxOpenFiles
	}
	if r.MaxBufferedBytes == 0 {
		r.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if r.Parallelism == 0 {
		r.Parallelism = runtime.GOMAXPROCS(0)
	}
	if r.Operation == "" {
		r.Operation = "WRITE"
	}
	if r.Allocator == nil {
		r.Allocator = memory.DefaultAllocator
	}
	return &r, r.validate()
}

func (o *Options) validate() error {
	var errs []error
	if o.Mode < Append || o.Mode > OverwriteWhere {
		errs = append(errs, fmt.Errorf("unknown mode %d", int(o.Mode)))
	}
	if o.Mode == OverwriteWhere && len(o.Where) == 0 {
		errs = append(errs, errors.New("mode OverwriteWhere needs at least one Where condition (to replace the whole table, use Overwrite)"))
	}
	if o.Mode != OverwriteWhere && len(o.Where) > 0 {
		errs = append(errs, fmt.Errorf("Where conditions are only used with mode OverwriteWhere, not %s", o.Mode))
	}
	if o.TargetFileSize < 0 {
		errs = append(errs, fmt.Errorf("TargetFileSize %d is negative", o.TargetFileSize))
	}
	if o.RowGroupRows < 0 || o.RowGroupBytes < 0 {
		errs = append(errs, errors.New("RowGroupRows and RowGroupBytes must be positive"))
	}
	if o.MaxOpenFiles < 0 || o.MaxBufferedBytes < 0 || o.Parallelism < 0 {
		errs = append(errs, errors.New("MaxOpenFiles, MaxBufferedBytes and Parallelism must be positive"))
	}
	if _, _, err := codec(o.Compression); err != nil {
		errs = append(errs, err)
	}
	if o.AppID == "" && o.AppVersion != 0 {
		errs = append(errs, errors.New("AppVersion is set but AppID is empty"))
	}
	if o.AppVersion < 0 {
		errs = append(errs, fmt.Errorf("AppVersion %d is negative", o.AppVersion))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("writer options: %w", err)
	}
	return nil
}

// codec maps a compression name to the Parquet codec and the infix of file names (Spark's:
// part-00000-<uuid>.c000.zstd.parquet).
func codec(name string) (compress.Compression, string, error) {
	switch name {
	case "zstd":
		return compress.Codecs.Zstd, ".zstd", nil
	case "snappy":
		return compress.Codecs.Snappy, ".snappy", nil
	case "gzip":
		return compress.Codecs.Gzip, ".gz", nil
	case "lz4_raw", "lz4raw":
		return compress.Codecs.Lz4Raw, ".lz4raw", nil
	case "uncompressed", "none":
		return compress.Codecs.Uncompressed, "", nil
	}
	return 0, "", fmt.Errorf("compression %q is not supported (want zstd, snappy, gzip, lz4_raw or uncompressed)", name)
}

// parseBytes reads a size: a number of bytes, optionally with a unit (b, k, kb, m, mb, g, gb;
// binary multiples, as Spark reads delta.targetFileSize).
func parseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want a positive number of bytes, optionally with a unit (128mb)")
	}
	return n * mult, nil
}
