package pqdecode

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

const benchRows = 1_000_000

// benchFile holds one row group of 1M rows: a nullable string column whose
// chunk starts dictionary encoded and falls back to plain (the dictionary
// page limit is hit part-way), and a required int64 column.
var benchFiles sync.Map // compress.Compression -> []byte

func benchFile() []byte { return benchFileCodec(compress.Codecs.Snappy) }

func benchFileCodec(codec compress.Compression) []byte {
	if v, ok := benchFiles.Load(codec); ok {
		return v.([]byte)
	}
	data := makeBenchFile(codec)
	benchFiles.Store(codec, data)
	return data
}

func makeBenchFile(codec compress.Compression) []byte {
	rng := rand.New(rand.NewPCG(42, 42))
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	sb := b.Field(0).(*array.StringBuilder)
	ib := b.Field(1).(*array.Int64Builder)
	words := make([]string, 20000)
	for i := range words {
		words[i] = randString(rng, 24)
	}
	for i := 0; i < benchRows; i++ {
		if rng.IntN(20) == 0 {
			sb.AppendNull()
		} else if i < benchRows/2 {
			sb.Append(words[rng.IntN(len(words))])
		} else {
			sb.Append(randString(rng, 24))
		}
		ib.Append(1_700_000_000_000_000 + int64(i)*1000 + rng.Int64N(1000))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return writeParquet(&testing.T{}, rec, benchRows,
		parquet.WithCompression(codec),
		parquet.WithDictionaryPageSizeLimit(1<<20))
}

// BenchmarkReadColumn compares ReadColumn with pqarrow's column read on a
// 1M-row row group, per codec:
//
//	go test -run '^$' -bench BenchmarkReadColumn -benchtime 3s ./internal/pqdecode/
func BenchmarkReadColumn(b *testing.B) {
	checkBenchFileShape(b, benchFile())
	for _, codec := range []compress.Compression{compress.Codecs.Snappy, compress.Codecs.Zstd, compress.Codecs.Uncompressed} {
		b.Run(codec.String(), func(b *testing.B) { benchReadColumn(b, benchFileCodec(codec)) })
	}
}

func benchReadColumn(b *testing.B, data []byte) {
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: benchRows}, memory.DefaultAllocator)
	if err != nil {
		b.Fatal(err)
	}
	cols := []struct {
		name string
		leaf int
		dt   arrow.DataType
	}{
		{"string", 0, arrow.BinaryTypes.String},
		{"int64", 1, arrow.PrimitiveTypes.Int64},
	}
	for _, c := range cols {
		if !Supported(pf, 0, c.leaf, c.dt) {
			b.Fatalf("%s not supported", c.name)
		}
		b.Run(c.name+"/pqdecode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				arr, err := ReadColumn(pf, 0, c.leaf, c.dt, memory.DefaultAllocator)
				if err != nil {
					b.Fatal(err)
				}
				arr.Release()
			}
			b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
		b.Run(c.name+"/pqarrow", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ch, err := fr.RowGroup(0).Column(c.leaf).Read(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				ch.Release()
			}
			b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// dataPageEncodings counts the data pages of leaf column leaf in the first row
// group of data by encoding.
func dataPageEncodings(t testing.TB, data []byte, leaf int) map[parquet.Encoding]int {
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	pr, err := pf.RowGroup(0).GetColumnPageReader(leaf)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	encs := map[parquet.Encoding]int{}
	for pr.Next() {
		if _, ok := pr.Page().(file.DataPage); ok {
			encs[parquet.Encoding(pr.Page().Encoding())]++
		}
	}
	return encs
}

// checkBenchFileShape checks that the benchmark reads what it claims: the string
// chunk holds dictionary and plain pages, and both decoders agree on it.
func checkBenchFileShape(t testing.TB, data []byte) {
	encs := dataPageEncodings(t, data, 0)
	if encs[parquet.Encodings.Plain] == 0 || encs[parquet.Encodings.RLEDict]+encs[parquet.Encodings.PlainDict] == 0 {
		t.Errorf("string chunk pages by encoding: %v, want dictionary and plain", encs)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	compareFile(t, data, mem)
	mem.AssertSize(t, 0)
}
