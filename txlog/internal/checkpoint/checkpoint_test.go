package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/lakehouse/lake/internal/delta"
)

// ---- helpers -------------------------------------------------------------------------------------

// pqConformanceDir is the conformance corpus: ../shared/conformance beside the repository (as in
// CI), else /work/shared/conformance. Without it the test is skipped, or fails when CI is set.
func pqConformanceDir(t testing.TB) string {
	t.Helper()
	for _, d := range []string{filepath.Join("..", "..", "shared", "conformance"), "/work/shared/conformance"} {
		if st, err := os.Stat(filepath.Join(d, "delta-rs")); err == nil && st.IsDir() {
			return d
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("conformance corpus not found at ../shared/conformance (relative to the repository) or /work/shared/conformance")
	}
	t.Skip("conformance corpus not found; set it up at ../shared/conformance")
	return ""
}

func pqDecodeBytes(data []byte, opts ...ReadOption) ([]delta.Action, error) {
	var out []delta.Action
	err := Decode(bytes.NewReader(data), int64(len(data)), func(a delta.Action) error {
		out = append(out, a)
		return nil
	}, opts...)
	return out, err
}

func pqDecodeFile(t testing.TB, path string, opts ...ReadOption) []delta.Action {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	acts, err := pqDecodeBytes(data, opts...)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return acts
}

type pqCounts struct {
	protocol, metadata, add, remove, txn, domain, sidecar, cpMeta int
}

func pqCount(acts []delta.Action) pqCounts {
	var c pqCounts
	for _, a := range acts {
		switch {
		case a.Protocol != nil:
			c.protocol++
		case a.Metadata != nil:
			c.metadata++
		case a.Add != nil:
			c.add++
		case a.Remove != nil:
			c.remove++
		case a.Txn != nil:
			c.txn++
		case a.DomainMetadata != nil:
			c.domain++
		case a.Sidecar != nil:
			c.sidecar++
		case a.CheckpointMetadata != nil:
			c.cpMeta++
		}
	}
	return c
}

func pqAddPaths(acts []delta.Action) []string {
	var out []string
	for _, a := range acts {
		if a.Add != nil {
			out = append(out, a.Add.Path)
		}
	}
	sort.Strings(out)
	return out
}

func pqReadLines(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

func pqJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// pqCorpusFiles lists the corpus's Parquet checkpoints and sidecars.
func pqCorpusFiles(t testing.TB, dir string) []string {
	t.Helper()
	var files []string
	root := filepath.Join(dir, "delta-rs")
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() || !strings.HasSuffix(p, ".parquet") {
			return nil
		}
		parent := filepath.Base(filepath.Dir(p))
		if (parent == "_delta_log" && strings.Contains(de.Name(), ".checkpoint")) || parent == "_sidecars" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 15 {
		t.Fatalf("found only %d checkpoint files under %s", len(files), root)
	}
	return files
}

// ---- the corpus ----------------------------------------------------------------------------------

// TestDecodeCheckpointCorpus decodes every Parquet checkpoint and sidecar of the corpus and checks
// its shape, and that the adds of each classic checkpoint are the files delta-rs found at that
// version.
func TestDecodeCheckpointCorpus(t *testing.T) {
	dir := pqConformanceDir(t)
	for _, p := range pqCorpusFiles(t, dir) {
		rel, _ := filepath.Rel(dir, p)
		t.Run(rel, func(t *testing.T) {
			acts := pqDecodeFile(t, p)
			c := pqCount(acts)
			sidecar := filepath.Base(filepath.Dir(p)) == "_sidecars"
			if sidecar {
				if c.add+c.remove != len(acts) || c.add == 0 {
					t.Fatalf("sidecar holds %+v, want adds and removes only", c)
				}
			} else if c.protocol != 1 || c.metadata != 1 {
				t.Fatalf("checkpoint holds %+v, want one protocol and one metaData", c)
			}
			for _, a := range acts {
				if a.IsEmpty() {
					t.Fatal("empty action")
				}
				if a.Add != nil {
					if a.Add.Path == "" || a.Add.PartitionValues == nil || a.Add.Size <= 0 {
						t.Fatalf("bad add %s", pqJSON(a.Add))
					}
					if a.Add.Stats != "" && !json.Valid([]byte(a.Add.Stats)) {
						t.Fatalf("add %s: stats are not JSON: %s", a.Add.Path, a.Add.Stats)
					}
				}
				if a.Metadata != nil {
					if _, err := delta.ParseSchema(a.Metadata.SchemaString); err != nil &&
						!strings.Contains(a.Metadata.SchemaString, "variant") {
						t.Fatalf("schema: %v", err)
					}
				}
			}

			// The active files delta-rs found at the checkpoint's version.
			table := filepath.Base(filepath.Dir(filepath.Dir(p)))
			if sidecar {
				table = filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(p))))
			}
			var version int
			if _, err := fmt.Sscanf(filepath.Base(p), "%020d.", &version); err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(dir, "expected", table, fmt.Sprintf("v%d.files", version))
			if _, err := os.Stat(want); err != nil {
				return
			}
			var got []string
			for _, path := range pqAddPaths(acts) {
				u, err := url.PathUnescape(path)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, u)
			}
			sort.Strings(got)
			if exp := pqReadLines(t, want); !slices.Equal(got, exp) {
				t.Fatalf("adds:\n%s\nwant (%s):\n%s", strings.Join(got, "\n"), want, strings.Join(exp, "\n"))
			}
		})
	}
}

func pqCheckDelta020(t *testing.T, acts []delta.Action, wantFiles []string) {
	t.Helper()
	c := pqCount(acts)
	if c != (pqCounts{protocol: 1, metadata: 1, add: 3, remove: 4, txn: 1}) {
		t.Fatalf("counts %+v", c)
	}
	for _, a := range acts {
		switch {
		case a.Protocol != nil:
			if a.Protocol.MinReaderVersion != 1 || a.Protocol.MinWriterVersion != 2 {
				t.Fatalf("protocol %+v, want (1,2)", a.Protocol)
			}
		case a.Txn != nil:
			if a.Txn.AppID != "e4a20b59-dd0e-4c50-b074-e8ae4786df30" || a.Txn.Version != 0 ||
				a.Txn.LastUpdated == nil || *a.Txn.LastUpdated != 1564524299648 {
				t.Fatalf("txn %s", pqJSON(a.Txn))
			}
		case a.Remove != nil:
			if a.Remove.DeletionTimestamp == nil || a.Remove.DataChange {
				t.Fatalf("remove %s", pqJSON(a.Remove))
			}
		case a.Add != nil:
			if a.Add.Size <= 0 || a.Add.ModificationTime <= 0 || a.Add.DataChange || len(a.Add.PartitionValues) != 0 {
				t.Fatalf("add %s", pqJSON(a.Add))
			}
		case a.Metadata != nil:
			if a.Metadata.Format.Provider != "parquet" || a.Metadata.PartitionColumns == nil {
				t.Fatalf("metadata %s", pqJSON(a.Metadata))
			}
		}
	}
	if got := pqAddPaths(acts); !slices.Equal(got, wantFiles) {
		t.Fatalf("adds %v, want %v", got, wantFiles)
	}
}

func TestDecodeCheckpointDelta020(t *testing.T) {
	want := pqReadLines(t, "testdata/delta-0.2.0.v3.files")
	acts := pqDecodeFile(t, "testdata/delta-0.2.0.00000000000000000003.checkpoint.parquet")
	pqCheckDelta020(t, acts, want)
}

func TestDecodeCheckpointDelta020Corpus(t *testing.T) {
	dir := pqConformanceDir(t)
	want := pqReadLines(t, filepath.Join(dir, "expected", "delta-0.2.0", "v3.files"))
	acts := pqDecodeFile(t, filepath.Join(dir, "delta-rs", "delta-0.2.0", "_delta_log", "00000000000000000003.checkpoint.parquet"))
	pqCheckDelta020(t, acts, want)
}

// TestDecodeCheckpointTestdata checks the small checkpoints kept in testdata, so that decoding
// is covered without the corpus.
func TestDecodeCheckpointTestdata(t *testing.T) {
	acts := pqDecodeFile(t, "testdata/simple_table_with_checkpoint.00000000000000000010.checkpoint.parquet")
	if c := pqCount(acts); c != (pqCounts{protocol: 1, metadata: 1, add: 11}) {
		t.Fatalf("simple_table_with_checkpoint: %+v", c)
	}
	acts = pqDecodeFile(t, "testdata/python-0.25.5-checkpoint.00000000000000000000.checkpoint.parquet")
	if c := pqCount(acts); c != (pqCounts{protocol: 1, metadata: 1, add: 1}) {
		t.Fatalf("python-0.25.5-checkpoint: %+v", c)
	}
	for _, a := range acts {
		if a.Add != nil && a.Add.Stats != `{"numRecords":3,"minValues":{"x":1},"maxValues":{"x":3},"nullCount":{"x":0}}` {
			t.Fatalf("stats %q", a.Add.Stats)
		}
	}
	acts = pqDecodeFile(t, "testdata/checkpoint-v2-table.sidecar.00000000000000000006.parquet")
	if c := pqCount(acts); c != (pqCounts{add: 5}) {
		t.Fatalf("sidecar: %+v", c)
	}
}

// TestDecodeCheckpointOnlyStructStats: the checkpoint has stats only as stats_parsed; the JSON
// rendered from it must be what Spark wrote in the commit that added the file, byte for byte.
func TestDecodeCheckpointOnlyStructStats(t *testing.T) {
	dir := pqConformanceDir(t)
	log := filepath.Join(dir, "delta-rs", "delta-1.2.1-only-struct-stats", "_delta_log")
	acts := pqDecodeFile(t, filepath.Join(log, "00000000000000000010.checkpoint.parquet"))
	committed := map[string]string{}
	for v := 0; v <= 10; v++ {
		data, err := os.ReadFile(filepath.Join(log, fmt.Sprintf("%020d.json", v)))
		if err != nil {
			t.Fatal(err)
		}
		cas, err := delta.DecodeActions(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range cas {
			if a.Add != nil {
				committed[a.Add.Path] = a.Add.Stats
			}
		}
	}
	n := 0
	for _, a := range acts {
		if a.Add == nil {
			continue
		}
		n++
		var st struct{ NumRecords *int64 }
		if err := json.Unmarshal([]byte(a.Add.Stats), &st); err != nil || st.NumRecords == nil {
			t.Fatalf("add %s: stats %q: %v", a.Add.Path, a.Add.Stats, err)
		}
		want, ok := committed[a.Add.Path]
		if !ok {
			t.Fatalf("add %s not in the commits", a.Add.Path)
		}
		if a.Add.Stats != want {
			t.Errorf("add %s:\n got %s\nwant %s", a.Add.Path, a.Add.Stats, want)
		}
	}
	if n != 10 {
		t.Fatalf("%d adds, want 10", n)
	}
}

// TestDecodeCheckpointStatsParsedMatchesStats renders stats_parsed as JSON in every corpus file
// that has both, and compares with the JSON stats the writer stored.
func TestDecodeCheckpointStatsParsedMatchesStats(t *testing.T) {
	dir := pqConformanceDir(t)
	force := func(c *pqReadConfig) { c.forceParsed = true }
	compared := 0
	for _, p := range pqCorpusFiles(t, dir) {
		plain := pqDecodeFile(t, p)
		parsed := pqDecodeFile(t, p, force)
		if len(plain) != len(parsed) {
			t.Fatalf("%s: %d vs %d actions", p, len(plain), len(parsed))
		}
		for i := range plain {
			a, b := plain[i].Add, parsed[i].Add
			if a == nil || a.Stats == "" || b.Stats == "" || a.Stats == b.Stats {
				compared += pqBool(a != nil && a.Stats != "" && a.Stats == b.Stats)
				continue
			}
			var x, y map[string]any
			if err := json.Unmarshal([]byte(a.Stats), &x); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(b.Stats), &y); err != nil {
				t.Fatalf("%s: rendered stats %q: %v", p, b.Stats, err)
			}
			pqDropNulls(x)
			if !reflect.DeepEqual(x, y) {
				t.Errorf("%s: %s:\nstats        %s\nstats_parsed %s", filepath.Base(p), a.Path, a.Stats, b.Stats)
			}
			compared++
		}
	}
	if compared < 20 {
		t.Fatalf("compared only %d adds", compared)
	}
}

func pqBool(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pqDropNulls removes null values (writers differ on writing them; stats_parsed has none).
func pqDropNulls(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pqDropNulls(v)
		}
	}
}

func TestDecodeCheckpointDeletionVectors(t *testing.T) {
	dir := pqConformanceDir(t)
	for _, v := range []string{"10", "20"} {
		acts := pqDecodeFile(t, filepath.Join(dir, "delta-rs", "table_with_deletion_logs", "_delta_log", "000000000000000000"+v+".checkpoint.parquet"))
		var adds, dvRemoves int
		for _, a := range acts {
			if a.Add != nil {
				adds++
				dv := a.Add.DeletionVector
				if dv == nil {
					t.Fatalf("add %s has no deletion vector", a.Add.Path)
				}
				if dv.StorageType != "u" || dv.PathOrInlineDv != "Q6Kt3y1b)0MgZSWwPunr" || dv.Offset == nil || *dv.Offset != 1 ||
					dv.SizeInBytes != 36 || dv.Cardinality != 2 {
					t.Fatalf("deletion vector %s", pqJSON(dv))
				}
				if dv.UniqueID() != "uQ6Kt3y1b)0MgZSWwPunr@1" {
					t.Fatalf("unique id %s", dv.UniqueID())
				}
			}
			if a.Remove != nil && a.Remove.DeletionVector != nil {
				dvRemoves++
				if a.Remove.DeletionVector.Cardinality != 1 {
					t.Fatalf("remove dv %s", pqJSON(a.Remove.DeletionVector))
				}
			}
			if a.Protocol != nil && !slices.Contains(a.Protocol.ReaderFeatures, "deletionVectors") {
				t.Fatalf("protocol %s", pqJSON(a.Protocol))
			}
		}
		if adds != 1 || dvRemoves != 1 {
			t.Fatalf("v%s: %d adds, %d removes with a DV", v, adds, dvRemoves)
		}
	}
}

func TestDecodeCheckpointDomainMetadata(t *testing.T) {
	dir := pqConformanceDir(t)
	acts := pqDecodeFile(t, filepath.Join(dir, "delta-rs", "table-with-domain-metadata", "_delta_log", "00000000000000000108.checkpoint.parquet"))
	var domains []string
	rowIDs := 0
	for _, a := range acts {
		if a.DomainMetadata != nil {
			domains = append(domains, a.DomainMetadata.Domain)
			if a.DomainMetadata.Removed || !json.Valid([]byte(a.DomainMetadata.Configuration)) {
				t.Fatalf("domain %s", pqJSON(a.DomainMetadata))
			}
		}
		if a.Add != nil && a.Add.BaseRowID != nil && a.Add.DefaultRowCommitVersion != nil {
			rowIDs++
		}
		if a.Protocol != nil && (a.Protocol.MinReaderVersion != 3 || a.Protocol.MinWriterVersion != 7 ||
			!slices.Contains(a.Protocol.WriterFeatures, "domainMetadata")) {
			t.Fatalf("protocol %s", pqJSON(a.Protocol))
		}
	}
	sort.Strings(domains)
	if !slices.Equal(domains, []string{"com.databricks.liquid", "delta.clustering", "delta.rowTracking"}) {
		t.Fatalf("domains %v", domains)
	}
	if c := pqCount(acts); c.add != 109 || rowIDs != 109 {
		t.Fatalf("%d adds, %d with row ids", c.add, rowIDs)
	}
}

func TestDecodeCheckpointV2Sidecars(t *testing.T) {
	dir := pqConformanceDir(t)
	side := filepath.Join(dir, "delta-rs", "checkpoint-v2-table", "_delta_log", "_sidecars")
	ents, err := os.ReadDir(side)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, e := range ents {
		acts := pqDecodeFile(t, filepath.Join(side, e.Name()))
		for _, a := range acts {
			if a.Add == nil || a.Add.Stats == "" {
				t.Fatalf("%s: %s", e.Name(), pqJSON(a))
			}
		}
		total += len(acts)
	}
	if total != 12 {
		t.Fatalf("%d adds in the sidecars, want 5+7", total)
	}
}

// TestDecodeCheckpointProjection reads only some columns, and no stats.
func TestDecodeCheckpointProjection(t *testing.T) {
	data, err := os.ReadFile("testdata/delta-0.2.0.00000000000000000003.checkpoint.parquet")
	if err != nil {
		t.Fatal(err)
	}
	acts, err := pqDecodeBytes(data, WithActions("protocol", "txn"))
	if err != nil {
		t.Fatal(err)
	}
	if c := pqCount(acts); c != (pqCounts{protocol: 1, txn: 1}) {
		t.Fatalf("%+v", c)
	}
	acts, err = pqDecodeBytes(mustEncode(t, pqSampleActions()), WithoutStats())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acts {
		if a.Add != nil && a.Add.Stats != "" {
			t.Fatalf("stats read: %s", a.Add.Stats)
		}
	}
}

// ---- encoding --------------------------------------------------------------------------------------

func pqStr(s string) *string { return &s }
func pqI64(v int64) *int64   { return &v }
func pqI32(v int32) *int32   { return &v }
func pqB(v bool) *bool       { return &v }

func pqSampleActions() []delta.Action {
	return []delta.Action{
		{Protocol: &delta.Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"deletionVectors"},
			WriterFeatures: []string{"deletionVectors", "domainMetadata", "rowTracking"}}},
		{Metadata: &delta.Metadata{ID: "6ad4a76d-1a6c-4b0a-9c39-4c5d0b1c8a9e", Name: pqStr("events"), Description: pqStr("all \"the\" events"),
			Format:           delta.Format{Provider: "parquet", Options: map[string]string{}},
			SchemaString:     `{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}},{"name":"day","type":"date","nullable":true,"metadata":{}}]}`,
			PartitionColumns: []string{"day"}, CreatedTime: pqI64(1700000000000),
			Configuration: map[string]string{"delta.enableDeletionVectors": "true", "delta.checkpointInterval": "10"}}},
		{Txn: &delta.Txn{AppID: "stream-a", Version: 42, LastUpdated: pqI64(1700000000001)}},
		{Txn: &delta.Txn{AppID: "stream-b", Version: 7}},
		{DomainMetadata: &delta.DomainMetadata{Domain: "delta.rowTracking", Configuration: `{"rowIdHighWaterMark":99}`}},
		{DomainMetadata: &delta.DomainMetadata{Domain: "com.example", Configuration: "", Removed: true}},
		{Add: &delta.Add{Path: "day=2024-01-01/part-00000-a.c000.snappy.parquet", PartitionValues: map[string]*string{"day": pqStr("2024-01-01")},
			Size: 1234, ModificationTime: 1700000000002, DataChange: true,
			Stats: `{"numRecords":10,"minValues":{"id":1},"maxValues":{"id":10},"nullCount":{"id":0}}`,
			Tags:  map[string]string{"INSERTION_TIME": "1700000000002000", "OPTIMIZE_TARGET_SIZE": "268435456"},
			DeletionVector: &delta.DeletionVector{StorageType: "u", PathOrInlineDv: "ab^-aqEH.-t@S}K{vb[*k^", Offset: pqI32(4),
				SizeInBytes: 40, Cardinality: 6},
			BaseRowID: pqI64(100), DefaultRowCommitVersion: pqI64(3), ClusteringProvider: pqStr("liquid")}},
		{Add: &delta.Add{Path: "day=__HIVE_DEFAULT_PARTITION__/part-00001-b.c000.snappy.parquet",
			PartitionValues: map[string]*string{"day": nil}, Size: 99, ModificationTime: 5}},
		{Add: &delta.Add{Path: "day=2024-01-01/part-00002-c%20d.c000.snappy.parquet", PartitionValues: map[string]*string{"day": pqStr("2024-01-01")},
			Size: 1, ModificationTime: 6, DeletionVector: &delta.DeletionVector{StorageType: "i", PathOrInlineDv: "wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L", SizeInBytes: 40, Cardinality: 1}}},
		{Add: &delta.Add{Path: "no-partitions.parquet", PartitionValues: map[string]*string{}, Size: 2, ModificationTime: 7,
			Stats: "{\"numRecords\":1,\"minValues\":{\"s\":\"a\\u0000b\"}}", Tags: map[string]string{}}},
		{Add: &delta.Add{Path: "multi.parquet", PartitionValues: map[string]*string{"a": pqStr(""), "b": pqStr("x=y"), "c": nil, "ü": pqStr("ö")},
			Size: 3, ModificationTime: 8}},
		{Remove: &delta.Remove{Path: "day=2023-12-31/part-00009-z.c000.snappy.parquet", DeletionTimestamp: pqI64(1699999999999), DataChange: true,
			ExtendedFileMetadata: pqB(true), PartitionValues: map[string]*string{"day": pqStr("2023-12-31")}, Size: pqI64(777),
			DeletionVector: &delta.DeletionVector{StorageType: "p", PathOrInlineDv: "s3://bucket/dv.bin", Offset: pqI32(1), SizeInBytes: 10, Cardinality: 2},
			BaseRowID:      pqI64(5), DefaultRowCommitVersion: pqI64(1)}},
		{Remove: &delta.Remove{Path: "old.parquet"}},
	}
}

func mustEncode(t testing.TB, acts []delta.Action, opts ...WriteOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, acts, opts...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pqNormalize makes an action comparable with its decoded form: what the checkpoint schema does
// not keep (remove stats and tags) is dropped, and required maps and lists are non-nil.
func pqNormalize(a delta.Action) delta.Action {
	switch {
	case a.Add != nil:
		c := *a.Add
		if c.PartitionValues == nil {
			c.PartitionValues = map[string]*string{}
		}
		a.Add = &c
	case a.Remove != nil:
		c := *a.Remove
		c.Stats, c.Tags = "", nil
		a.Remove = &c
	case a.Metadata != nil:
		c := *a.Metadata
		if c.Format.Provider == "" {
			c.Format.Provider = "parquet"
		}
		if c.Format.Options == nil {
			c.Format.Options = map[string]string{}
		}
		if c.Configuration == nil {
			c.Configuration = map[string]string{}
		}
		if c.PartitionColumns == nil {
			c.PartitionColumns = []string{}
		}
		a.Metadata = &c
	case a.Protocol != nil:
		c := *a.Protocol
		if c.MinReaderVersion >= 3 && c.ReaderFeatures == nil {
			c.ReaderFeatures = []string{}
		}
		if c.MinWriterVersion >= 7 && c.WriterFeatures == nil {
			c.WriterFeatures = []string{}
		}
		a.Protocol = &c
	}
	return a
}

func pqAssertSame(t *testing.T, got, want []delta.Action) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("decoded %d actions, want %d", len(got), len(want))
	}
	for i := range want {
		w := pqNormalize(want[i])
		if !reflect.DeepEqual(got[i], w) {
			t.Fatalf("action %d:\n got %s\nwant %s", i, pqJSON(got[i]), pqJSON(w))
		}
	}
}

func TestEncodeCheckpointRoundTrip(t *testing.T) {
	acts := pqSampleActions()
	data := mustEncode(t, acts)
	got, err := pqDecodeBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	pqAssertSame(t, got, acts)

	// Equal input gives equal bytes (map keys are sorted).
	if again := mustEncode(t, acts); !bytes.Equal(again, data) {
		t.Fatal("encoding is not deterministic")
	}

	// Low protocol versions keep feature lists null; zstd reads back the same.
	low := []delta.Action{{Protocol: &delta.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}}, {Metadata: &delta.Metadata{ID: "x"}}}
	got, err = pqDecodeBytes(mustEncode(t, low, WithZstd()))
	if err != nil {
		t.Fatal(err)
	}
	pqAssertSame(t, got, low)
	if got[0].Protocol.ReaderFeatures != nil || got[0].Protocol.WriterFeatures != nil {
		t.Fatalf("feature lists %s", pqJSON(got[0].Protocol))
	}
}

func TestEncodeCheckpointRowGroups(t *testing.T) {
	var acts []delta.Action
	acts = append(acts, delta.Action{Protocol: &delta.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}}, delta.Action{Metadata: &delta.Metadata{ID: "m"}})
	for i := 0; i < 2500; i++ {
		day := fmt.Sprintf("2024-01-%02d", i%28+1)
		a := &delta.Add{Path: fmt.Sprintf("day=%s/part-%05d.parquet", day, i), PartitionValues: map[string]*string{"day": &day},
			Size: int64(i + 1), ModificationTime: int64(i), DataChange: i%2 == 0}
		if i%3 != 0 {
			a.Stats = fmt.Sprintf(`{"numRecords":%d}`, i)
		}
		if i%100 == 7 {
			a.DeletionVector = &delta.DeletionVector{StorageType: "u", PathOrInlineDv: fmt.Sprintf("dv%d", i), SizeInBytes: 1, Cardinality: 1}
		}
		acts = append(acts, delta.Action{Add: a})
		if i%10 == 0 {
			acts = append(acts, delta.Action{Remove: &delta.Remove{Path: fmt.Sprintf("gone-%d", i), DeletionTimestamp: pqI64(int64(i))}})
		}
	}
	data := mustEncode(t, acts, WithRowGroupRows(300))
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if pf.NumRowGroups() < 9 {
		t.Fatalf("%d row groups", pf.NumRowGroups())
	}
	got, err := pqDecodeBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	pqAssertSame(t, got, acts)

	// Partition maps of equal values are shared, and read-only values are interned.
	var first map[string]*string
	for _, a := range got {
		if a.Add != nil && *a.Add.PartitionValues["day"] == "2024-01-01" {
			if first == nil {
				first = a.Add.PartitionValues
			} else if reflect.ValueOf(first).Pointer() != reflect.ValueOf(a.Add.PartitionValues).Pointer() {
				t.Fatal("equal partition values are not shared")
			}
		}
	}
}

// TestEncodeCheckpointSchema checks the written schema against the protocol's checkpoint schema.
func TestEncodeCheckpointSchema(t *testing.T) {
	data := mustEncode(t, pqSampleActions())
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var leaves []string
	sch := pf.MetaData().Schema
	for i := 0; i < sch.NumColumns(); i++ {
		c := sch.Column(i)
		leaves = append(leaves, c.Path()+":"+c.PhysicalType().String())
	}
	for _, want := range []string{
		"txn.appId:BYTE_ARRAY", "txn.version:INT64", "txn.lastUpdated:INT64",
		"add.path:BYTE_ARRAY", "add.partitionValues.key_value.key:BYTE_ARRAY", "add.partitionValues.key_value.value:BYTE_ARRAY",
		"add.size:INT64", "add.modificationTime:INT64", "add.dataChange:BOOLEAN", "add.stats:BYTE_ARRAY",
		"add.tags.key_value.key:BYTE_ARRAY", "add.deletionVector.storageType:BYTE_ARRAY", "add.deletionVector.offset:INT32",
		"add.deletionVector.sizeInBytes:INT32", "add.deletionVector.cardinality:INT64", "add.baseRowId:INT64",
		"add.defaultRowCommitVersion:INT64", "add.clusteringProvider:BYTE_ARRAY",
		"remove.path:BYTE_ARRAY", "remove.deletionTimestamp:INT64", "remove.dataChange:BOOLEAN", "remove.extendedFileMetadata:BOOLEAN",
		"remove.partitionValues.key_value.key:BYTE_ARRAY", "remove.size:INT64", "remove.deletionVector.pathOrInlineDv:BYTE_ARRAY",
		"remove.baseRowId:INT64", "remove.defaultRowCommitVersion:INT64",
		"metaData.id:BYTE_ARRAY", "metaData.name:BYTE_ARRAY", "metaData.description:BYTE_ARRAY", "metaData.format.provider:BYTE_ARRAY",
		"metaData.format.options.key_value.key:BYTE_ARRAY", "metaData.schemaString:BYTE_ARRAY",
		"metaData.partitionColumns.list.element:BYTE_ARRAY", "metaData.configuration.key_value.value:BYTE_ARRAY",
		"metaData.createdTime:INT64", "protocol.minReaderVersion:INT32", "protocol.minWriterVersion:INT32",
		"protocol.readerFeatures.list.element:BYTE_ARRAY", "protocol.writerFeatures.list.element:BYTE_ARRAY",
		"domainMetadata.domain:BYTE_ARRAY", "domainMetadata.configuration:BYTE_ARRAY", "domainMetadata.removed:BOOLEAN",
	} {
		if !slices.Contains(leaves, want) {
			t.Errorf("no column %s in %v", want, leaves)
		}
	}
	for _, l := range leaves {
		if strings.HasPrefix(l, "remove.stats") || strings.HasPrefix(l, "remove.tags") || strings.HasPrefix(l, "sidecar") {
			t.Errorf("unexpected column %s", l)
		}
	}
	top := []string{}
	for i := 0; i < sch.Root().NumFields(); i++ {
		top = append(top, sch.Root().Field(i).Name())
	}
	if !slices.Equal(top, []string{"txn", "add", "remove", "metaData", "protocol", "domainMetadata"}) {
		t.Fatalf("top-level columns %v", top)
	}
	// String columns carry the STRING logical type, maps MAP and lists LIST, as Spark writes them.
	if lt := sch.Column(sch.ColumnIndexByName("add.path")).LogicalType(); lt.String() != "String" {
		t.Fatalf("add.path logical type %s", lt)
	}
}

func TestEncodeCheckpointV2(t *testing.T) {
	acts := []delta.Action{
		{CheckpointMetadata: &delta.CheckpointMetadata{Version: 12, Tags: map[string]string{"k": "v"}}},
		{Protocol: &delta.Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"v2Checkpoint"}, WriterFeatures: []string{"v2Checkpoint"}}},
		{Metadata: &delta.Metadata{ID: "m", Format: delta.Format{Provider: "parquet", Options: map[string]string{"a": "b"}}}},
		{Sidecar: &delta.Sidecar{Path: "016ae953-37a9-438e-8683-9a9a4a79a395.parquet", SizeInBytes: 2304522, ModificationTime: 1512909768000}},
	}
	if err := Encode(&bytes.Buffer{}, acts); err == nil {
		t.Fatal("sidecar without WithV2Columns: no error")
	}
	got, err := pqDecodeBytes(mustEncode(t, acts, WithV2Columns()))
	if err != nil {
		t.Fatal(err)
	}
	pqAssertSame(t, got, acts)
}

// pqFailWriter fails once n bytes have been written.
type pqFailWriter struct{ n int }

var errPQWrite = errors.New("disk full")

func (w *pqFailWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		return 0, errPQWrite
	}
	w.n -= len(p)
	return len(p), nil
}

func TestCheckpointWriterStreaming(t *testing.T) {
	var buf bytes.Buffer
	cw, err := NewWriter(&buf, WithRowGroupRows(7))
	if err != nil {
		t.Fatal(err)
	}
	acts := pqSampleActions()
	for i := range acts {
		if err := cw.Write(&acts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if cw.Actions() != int64(len(acts)) {
		t.Fatalf("Actions() = %d", cw.Actions())
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cw.Write(&acts[0]); err == nil {
		t.Fatal("Write after Close: no error")
	}
	got, err := pqDecodeBytes(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	pqAssertSame(t, got, acts)

	// A failing writer is reported, whether it fails early or in a later row group.
	for _, n := range []int{0, 3, 500, 5000, 50000} {
		var many []delta.Action
		for i := 0; i < 3000; i++ {
			many = append(many, acts[6+i%5])
		}
		err := Encode(&pqFailWriter{n: n}, many, WithRowGroupRows(100))
		if !errors.Is(err, errPQWrite) && (err == nil || !strings.Contains(err.Error(), "disk full")) {
			t.Fatalf("fail after %d bytes: err = %v", n, err)
		}
	}
}

func TestEncodeCheckpointRejects(t *testing.T) {
	for _, a := range []delta.Action{{}, {CDC: &delta.CDC{Path: "x"}}, {CommitInfo: &delta.CommitInfo{Operation: "WRITE"}}} {
		if err := Encode(&bytes.Buffer{}, []delta.Action{a}); err == nil {
			t.Errorf("%s: no error", pqJSON(a))
		}
	}
	// An empty checkpoint is a valid, empty file.
	got, err := pqDecodeBytes(mustEncode(t, nil))
	if err != nil || len(got) != 0 {
		t.Fatalf("%v %v", got, err)
	}
}

// ---- stats_parsed ------------------------------------------------------------------------------

// pqArrowFile writes rows given as JSON objects with an Arrow schema.
func pqArrowFile(t testing.TB, sc *arrow.Schema, rows string) []byte {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, sc, strings.NewReader(rows))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(sc, &buf, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pqStatsParsedFile is a checkpoint with stats only as stats_parsed, of many types.
func pqStatsParsedFile(t testing.TB) []byte {
	values := arrow.StructOf(
		arrow.Field{Name: "i", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "l", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: "d", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		arrow.Field{Name: "f", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		arrow.Field{Name: "dec", Type: &arrow.Decimal128Type{Precision: 8, Scale: 5}, Nullable: true},
		arrow.Field{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "dt", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		arrow.Field{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		arrow.Field{Name: "ntz", Type: &arrow.TimestampType{Unit: arrow.Microsecond}, Nullable: true},
		arrow.Field{Name: "b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		arrow.Field{Name: "st", Type: arrow.StructOf(arrow.Field{Name: "x y", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
	)
	counts := arrow.StructOf(
		arrow.Field{Name: "i", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: "st", Type: arrow.StructOf(arrow.Field{Name: "x y", Type: arrow.PrimitiveTypes.Int64, Nullable: true}), Nullable: true},
	)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "protocol", Type: arrow.StructOf(
			arrow.Field{Name: "minReaderVersion", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			arrow.Field{Name: "minWriterVersion", Type: arrow.PrimitiveTypes.Int32, Nullable: true}), Nullable: true},
		{Name: "add", Type: arrow.StructOf(
			arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "partitionValues", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
			arrow.Field{Name: "size", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: "modificationTime", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: "dataChange", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
			arrow.Field{Name: "stats_parsed", Type: arrow.StructOf(
				arrow.Field{Name: "nullCount", Type: counts, Nullable: true},
				arrow.Field{Name: "numRecords", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
				arrow.Field{Name: "minValues", Type: values, Nullable: true},
				arrow.Field{Name: "maxValues", Type: values, Nullable: true},
				arrow.Field{Name: "tightBounds", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
			), Nullable: true},
			arrow.Field{Name: "partitionValues_parsed", Type: arrow.StructOf(arrow.Field{Name: "p", Type: arrow.PrimitiveTypes.Int32, Nullable: true}), Nullable: true},
		), Nullable: true},
	}, nil)
	rows := `[
{"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}, "add": null},
{"protocol": null, "add": {"path": "a.parquet", "partitionValues": [{"key": "p", "value": "1"}], "size": 10, "modificationTime": 11, "dataChange": true,
  "stats_parsed": {"numRecords": 5, "tightBounds": false,
    "minValues": {"i": -3, "l": 9007199254740993, "d": 1.5, "f": 0.1, "dec": "-5.678", "s": "a\"b\n<&>", "dt": "2022-10-24", "ts": "2022-10-24T22:59:36.177Z", "ntz": "2022-10-24T22:59:36.177001", "b": false, "st": {"x y": "v"}},
    "maxValues": {"i": null, "l": null, "d": 1e300, "f": null, "dec": "0.00001", "s": null, "dt": "1969-12-31", "ts": null, "ntz": null, "b": true, "st": null},
    "nullCount": {"i": 0, "st": {"x y": 2}}},
  "partitionValues_parsed": {"p": 1}}},
{"protocol": null, "add": {"path": "b.parquet", "partitionValues": [], "size": 1, "modificationTime": 2, "dataChange": false, "stats_parsed": null}}
]`
	return pqArrowFile(t, sc, rows)
}

func TestDecodeCheckpointStatsParsed(t *testing.T) {
	data := pqStatsParsedFile(t)
	acts, err := pqDecodeBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 3 {
		t.Fatalf("%d actions", len(acts))
	}
	want := `{"numRecords":5,"minValues":{"i":-3,"l":9007199254740993,"d":1.5,"f":0.1,"dec":-5.67800,"s":"a\"b\n<&>","dt":"2022-10-24","ts":"2022-10-24T22:59:36.177Z","ntz":"2022-10-24T22:59:36.177001Z","b":false,"st":{"x y":"v"}},` +
		`"maxValues":{"d":1e+300,"dec":0.00001,"dt":"1969-12-31","b":true},"nullCount":{"i":0,"st":{"x y":2}},"tightBounds":false}`
	if got := acts[1].Add.Stats; got != want {
		t.Fatalf("stats\n got %s\nwant %s", got, want)
	}
	if !json.Valid([]byte(want)) {
		t.Fatal("want is not JSON")
	}
	if acts[2].Add.Stats != "" || acts[2].Add.Path != "b.parquet" {
		t.Fatalf("add %s", pqJSON(acts[2].Add))
	}
	if pv := acts[1].Add.PartitionValues; len(pv) != 1 || *pv["p"] != "1" {
		t.Fatalf("partition values %s", pqJSON(pv))
	}
	// Without stats nothing of stats_parsed is read.
	acts, err = pqDecodeBytes(data, WithoutStats())
	if err != nil || acts[1].Add.Stats != "" {
		t.Fatalf("%v %v", acts, err)
	}
}

// ---- errors ----------------------------------------------------------------------------------------

func TestDecodeCheckpointNotParquet(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty": nil,
		"json":  []byte(`{"add":{"path":"x"}}` + "\n"),
		"magic": []byte("PAR1PAR1"),
		"junk":  bytes.Repeat([]byte("PAR1 junk "), 100),
	} {
		_, err := pqDecodeBytes(data)
		if err == nil || !strings.Contains(err.Error(), "Parquet") {
			t.Errorf("%s: err = %v, want one saying it is not Parquet", name, err)
		}
	}
}

func TestDecodeCheckpointWrongTypes(t *testing.T) {
	str, i64 := arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64
	f := func(name string, typ arrow.DataType) arrow.Field {
		return arrow.Field{Name: name, Type: typ, Nullable: true}
	}
	for _, tc := range []struct {
		field    arrow.Field
		row      string
		col, exp string
	}{
		{f("add", arrow.StructOf(f("path", str), f("size", str))), `{"add": {"path": "p", "size": "big"}}`, "add.size", "long"},
		{f("add", arrow.StructOf(f("path", i64))), `{"add": {"path": 1}}`, "add.path", "string"},
		{f("add", arrow.StructOf(f("path", str), f("partitionValues", arrow.ListOf(i64)))), `{"add": {"path": "p", "partitionValues": [1]}}`, "add.partitionValues", "map<string,string>"},
		{f("add", arrow.StructOf(f("path", str), f("dataChange", i64))), `{"add": {"path": "p", "dataChange": 1}}`, "add.dataChange", "boolean"},
		{f("add", arrow.StructOf(f("path", str), f("deletionVector", str))), `{"add": {"path": "p", "deletionVector": "x"}}`, "add.deletionVector", "struct"},
		{f("add", arrow.StructOf(f("size", i64))), `{"add": {"size": 1}}`, "add", "path"},
		{f("protocol", arrow.PrimitiveTypes.Int32), `{"protocol": 1}`, "protocol", "struct"},
		{f("metaData", arrow.StructOf(f("id", str), f("partitionColumns", str))), `{"metaData": {"id": "x", "partitionColumns": "a"}}`, "metaData.partitionColumns", "array<string>"},
		{f("metaData", arrow.StructOf(f("id", str), f("configuration", arrow.MapOf(str, i64)))), `{"metaData": {"id": "x", "configuration": [{"key": "a", "value": 1}]}}`, "metaData.configuration", "map<string,string>"},
	} {
		sc := arrow.NewSchema([]arrow.Field{tc.field}, nil)
		_, err := pqDecodeBytes(pqArrowFile(t, sc, "["+tc.row+"]"))
		if err == nil || !strings.Contains(err.Error(), tc.col) || !strings.Contains(err.Error(), tc.exp) {
			t.Errorf("%s: err = %v, want one naming %s and %s", tc.row, err, tc.col, tc.exp)
		}
	}
}

// TestDecodeCheckpointUnknownColumns: columns and fields the decoder does not know are ignored.
func TestDecodeCheckpointUnknownColumns(t *testing.T) {
	str, i64 := arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64
	f := func(name string, typ arrow.DataType) arrow.Field {
		return arrow.Field{Name: name, Type: typ, Nullable: true}
	}
	sc := arrow.NewSchema([]arrow.Field{
		f("commitInfo", arrow.StructOf(f("operation", str))),
		f("add", arrow.StructOf(f("path", str), f("size", i64), f("future", arrow.ListOf(i64)))),
		f("cdc", arrow.StructOf(f("path", str))),
		f("rowIdHighWaterMark", arrow.StructOf(f("value", i64))),
	}, nil)
	acts, err := pqDecodeBytes(pqArrowFile(t, sc, `[
		{"commitInfo": {"operation": "WRITE"}, "add": null, "cdc": null, "rowIdHighWaterMark": null},
		{"commitInfo": null, "add": {"path": "a", "size": 3, "future": [1, 2]}, "cdc": {"path": "c"}, "rowIdHighWaterMark": {"value": 9}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 1 || acts[0].Add == nil || acts[0].Add.Path != "a" || acts[0].Add.Size != 3 {
		t.Fatalf("%s", pqJSON(acts))
	}
}

func TestDecodeCheckpointYield(t *testing.T) {
	data := mustEncode(t, pqSampleActions())
	stop := errors.New("stop")
	n := 0
	err := Decode(bytes.NewReader(data), int64(len(data)), func(delta.Action) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 {
		t.Fatalf("err %v after %d actions", err, n)
	}
	// A panic in yield is the caller's and is not turned into an error.
	defer func() {
		if r := recover(); r != "boom" {
			t.Fatalf("recovered %v", r)
		}
	}()
	_ = Decode(bytes.NewReader(data), int64(len(data)), func(delta.Action) error { panic("boom") })
	t.Fatal("no panic")
}

// TestDecodeCheckpointTruncated: every prefix of a checkpoint is an error, not a panic.
func TestDecodeCheckpointTruncated(t *testing.T) {
	data := mustEncode(t, pqSampleActions())
	for n := 0; n < len(data); n += 1 + n/50 {
		if _, err := pqDecodeBytes(data[:n]); err == nil {
			t.Fatalf("prefix of %d bytes: no error", n)
		}
	}
}

// ---- fuzzing -----------------------------------------------------------------------------------------

func FuzzDecodeCheckpoint(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.parquet")
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
		f.Add(data[len(data)/3:])
		// The footer with a damaged byte or two.
		for _, at := range []int{len(data) - 9, len(data) - 100, len(data) - 400, 100} {
			if at > 0 && at < len(data) {
				d := bytes.Clone(data)
				d[at] ^= 0x5a
				f.Add(d)
			}
		}
	}
	parsed := pqStatsParsedFile(f)
	f.Add(parsed)
	f.Add(parsed[:len(parsed)-30])
	small := mustEncode(f, pqSampleActions()[:8])
	f.Add(small)
	f.Add(small[:len(small)-20])
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		err := Decode(bytes.NewReader(data), int64(len(data)), func(a delta.Action) error {
			n++
			if a.IsEmpty() {
				t.Fatal("empty action")
			}
			return nil
		})
		if err == nil && n == 0 && len(data) > 0 {
			// A valid file without actions: fine.
			return
		}
	})
}
