package writer_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/metadata"

	"github.com/lakehouse/lake/txlog"
	"github.com/lakehouse/lake/writer"
)

// dictRows is a record for dictTable: low- and high-cardinality strings and binaries, with nulls
// and empty values (e: pqarrow's statistics of dictionary arrays skip empty values, so the writer
// leaves such columns to pqarrow's own dictionary).
func dictRecord(mem memory.Allocator, r *rand.Rand, n int) arrow.RecordBatch {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "lo", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "hi", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "e", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "bl", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "bh", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "n", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	lows := []string{"a", "b", "zz", "héllo", "a\x00b", "long-value-long-value"}
	for i := range n {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		if r.IntN(10) == 0 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(lows[r.IntN(len(lows))])
		}
		if r.IntN(20) == 0 {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("event-%d-%x", i, r.Uint64()))
		}
		switch r.IntN(4) {
		case 0:
			b.Field(3).AppendNull()
		case 1:
			b.Field(3).(*array.StringBuilder).Append("x")
		default:
			b.Field(3).(*array.StringBuilder).Append("")
		}
		if r.IntN(7) == 0 {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.BinaryBuilder).Append([]byte{byte(r.IntN(3)), 0xff}[:1+r.IntN(2)])
		}
		if r.IntN(9) == 0 {
			b.Field(5).AppendNull()
		} else {
			v := make([]byte, 16)
			for j := range v {
				v[j] = byte(r.Uint32())
			}
			b.Field(5).(*array.BinaryBuilder).Append(v)
		}
		b.Field(6).AppendNull()
	}
	return b.NewRecordBatch()
}

func dictTable(t *testing.T) *txlog.StructType {
	return &txlog.StructType{Fields: []txlog.StructField{
		{Name: "id", Type: txlog.Long},
		{Name: "lo", Type: txlog.String, Nullable: true},
		{Name: "hi", Type: txlog.String, Nullable: true},
		{Name: "e", Type: txlog.String, Nullable: true},
		{Name: "bl", Type: txlog.Binary, Nullable: true},
		{Name: "bh", Type: txlog.Binary, Nullable: true},
		{Name: "n", Type: txlog.String, Nullable: true},
	}}
}

// value is row i of a string or binary column, nil for a null.
func value(a arrow.Array, i int) []byte {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
	case *array.String:
		return append([]byte{}, a.Value(i)...)
	case *array.Binary:
		return append([]byte{}, a.Value(i)...)
	}
	panic(a.DataType())
}

// Row groups are encoded whole, their low-cardinality strings and binaries as dictionaries built
// by the writer: the rows read back are the rows written, the dictionary columns have a
// dictionary page and dictionary-encoded data pages, the high-cardinality ones are plain, and the
// Parquet statistics of every row group are the true ones.
func TestRowGroupDictionaries(t *testing.T) {
	ctx := context.Background()
	mem := checked(t)
	r := rand.New(rand.NewPCG(41, 42))
	tb := createTable(t, memURI(), dictTable(t), nil, nil)
	rec := dictRecord(mem, r, 9000)
	defer rec.Release()
	w, err := writer.New(ctx, tb, &writer.Options{Allocator: mem, RowGroupRows: 1500})
	if err != nil {
		t.Fatal(err)
	}
	// Slices with offsets, of various lengths, from row 500 on.
	for off := int64(500); off < rec.NumRows(); {
		end := min(off+int64(1+r.IntN(1200)), rec.NumRows())
		s := rec.NewSlice(off, end)
		if err := w.Write(ctx, s); err != nil {
			t.Fatal(err)
		}
		s.Release()
		off = end
	}
	res, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != 1 {
		t.Fatalf("%d files", len(res.Added))
	}
	tbl, md := readFile(t, tb, &res.Added[0])
	defer tbl.Release()
	if tbl.NumRows() != 8500 || md.NumRowGroups() != 6 {
		t.Fatalf("%d rows in %d row groups", tbl.NumRows(), md.NumRowGroups())
	}
	// The rows, in order.
	got := make([][][]byte, tbl.NumCols())
	for c := 1; c < int(tbl.NumCols()); c++ {
		for _, ch := range tbl.Column(c).Data().Chunks() {
			for i := range ch.Len() {
				got[c] = append(got[c], value(ch, i))
			}
		}
		for i := range 8500 {
			want := value(rec.Column(c), 500+i)
			if !bytes.Equal(got[c][i], want) || (got[c][i] == nil) != (want == nil) {
				t.Fatalf("column %s row %d: %q, want %q", tbl.Schema().Field(c).Name, i, got[c][i], want)
			}
		}
	}
	// e (empty values) and n (no values) get pqarrow's own dictionary, as before.
	dict := map[string]bool{"lo": true, "e": true, "bl": true, "n": true}
	start := 0
	for g := range md.NumRowGroups() {
		rg := md.RowGroup(g)
		n := int(rg.NumRows())
		for c := 1; c < rg.NumColumns(); c++ {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			name := cc.PathInSchema().String()
			checkEncodings(t, g, name, cc, dict[name])
			st, err := cc.Statistics()
			if err != nil || st == nil {
				t.Fatalf("rg %d %s: no statistics (%v)", g, name, err)
			}
			var lo, hi []byte
			nulls := int64(0)
			for _, v := range got[c][start : start+n] {
				if v == nil {
					nulls++
					continue
				}
				if lo == nil || bytes.Compare(v, lo) < 0 {
					lo = v
				}
				if hi == nil || bytes.Compare(v, hi) > 0 {
					hi = v
				}
			}
			if st.NullCount() != nulls {
				t.Errorf("rg %d %s: null count %d, want %d", g, name, st.NullCount(), nulls)
			}
			if lo == nil {
				if st.HasMinMax() {
					t.Errorf("rg %d %s: min/max of null values", g, name)
				}
				continue
			}
			if !st.HasMinMax() || !bytes.Equal(st.EncodeMin(), lo) || !bytes.Equal(st.EncodeMax(), hi) {
				t.Errorf("rg %d %s: min %q max %q, want %q %q", g, name, st.EncodeMin(), st.EncodeMax(), lo, hi)
			}
		}
		start += n
	}
}

func checkEncodings(t *testing.T, g int, name string, cc *metadata.ColumnChunkMetaData, dict bool) {
	t.Helper()
	if cc.HasDictionaryPage() != dict {
		t.Errorf("rg %d %s: dictionary page %v, want %v", g, name, cc.HasDictionaryPage(), dict)
	}
	for _, es := range cc.EncodingStats() {
		if fmt.Sprint(es.PageType) == "DICTIONARY_PAGE" {
			continue
		}
		want := parquet.Encodings.Plain
		if dict {
			want = parquet.Encodings.RLEDict
		}
		if es.Encoding != want {
			t.Errorf("rg %d %s: data pages %v, want %v", g, name, es.Encoding, want)
		}
	}
}

// The rows retained for open row groups are released by Close and Abort, and by a failed write.
func TestRowGroupMemory(t *testing.T) {
	ctx := context.Background()
	for _, end := range []string{"close", "abort", "cancel"} {
		t.Run(end, func(t *testing.T) {
			mem := checked(t)
			r := rand.New(rand.NewPCG(43, 44))
			tb := interactionsTable(t)
			wctx, cancel := context.WithCancel(ctx)
			defer cancel()
			w, err := writer.New(wctx, tb, &writer.Options{Allocator: mem, RowGroupRows: 700, MaxBufferedBytes: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			for range 4 {
				rec := interactionRecord(mem, genInteractions(r, 1000, 3))
				err := w.Write(wctx, rec)
				rec.Release()
				if err != nil {
					t.Fatal(err)
				}
			}
			switch end {
			case "close":
				res, err := w.Close(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if res.Rows != 4000 {
					t.Errorf("%d rows", res.Rows)
				}
			case "abort":
				if err := w.Abort(ctx); err != nil {
					t.Fatal(err)
				}
			case "cancel":
				cancel()
				if _, err := w.Close(wctx); err == nil {
					t.Fatal("Close with a cancelled context succeeded")
				}
			}
		})
	}
}
