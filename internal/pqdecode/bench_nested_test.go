package pqdecode

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// benchMapFile holds one row group of 1M rows of a nullable
// map<string,string> (the interaction table's properties column): 10% null
// maps, otherwise one entry whose key is one of 3 strings and whose value is
// one of 10 (so both leaves are dictionary encoded), snappy compressed.
var benchMapFile = sync.OnceValue(func() []byte {
	rng := rand.New(rand.NewPCG(7, 7))
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "properties", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	mb := b.Field(0).(*array.MapBuilder)
	kb := mb.KeyBuilder().(*array.StringBuilder)
	ib := mb.ItemBuilder().(*array.StringBuilder)
	keys := []string{"source", "device", "campaign"}
	vals := []string{"web", "ios", "android", "email", "push", "organic", "paid", "referral", "social", "direct-partner"}
	for i := 0; i < benchRows; i++ {
		if rng.IntN(10) == 0 {
			mb.AppendNull()
			continue
		}
		mb.Append(true)
		kb.Append(keys[rng.IntN(len(keys))])
		ib.Append(vals[rng.IntN(len(vals))])
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return writeParquet(&testing.T{}, rec, benchRows, parquet.WithCompression(compress.Codecs.Snappy))
})

// BenchmarkReadField compares ReadField with pqarrow's column read on the
// 1M-row map<string,string> row group:
//
//	go test -run '^$' -bench BenchmarkReadField -benchtime 3s ./internal/pqdecode/
func BenchmarkReadField(b *testing.B) {
	data := benchMapFile()
	checkBenchMapFileShape(b, data)
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: benchRows}, memory.DefaultAllocator)
	if err != nil {
		b.Fatal(err)
	}
	dt := fr.Manifest.Fields[0].Field.Type
	if !SupportedField(pf, 0, 0, dt) {
		_, why := checkField(pf, 0, 0, dt)
		b.Fatalf("not supported: %v", why)
	}
	b.Run("map_string_string/pqdecode", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := processCPU()
		for b.Loop() {
			arr, err := ReadField(pf, 0, 0, dt, memory.DefaultAllocator)
			if err != nil {
				b.Fatal(err)
			}
			arr.Release()
		}
		reportRates(b, cpu0)
	})
	b.Run("map_string_string/pqarrow", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := processCPU()
		for b.Loop() {
			ch, err := fr.RowGroup(0).Column(0).Read(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			ch.Release()
		}
		reportRates(b, cpu0)
	})
}

// checkBenchMapFileShape checks that the benchmark reads what it claims: both
// leaves are dictionary encoded only, and both decoders agree on them.
func checkBenchMapFileShape(t testing.TB, data []byte) {
	for leaf := 0; leaf < 2; leaf++ {
		encs := dataPageEncodings(t, data, leaf)
		if encs[parquet.Encodings.Plain] != 0 || encs[parquet.Encodings.RLEDict]+encs[parquet.Encodings.PlainDict] == 0 {
			t.Errorf("leaf %d pages by encoding: %v, want dictionary only", leaf, encs)
		}
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	compareFields(t, data, mem)
	mem.AssertSize(t, 0)
}

// reportRates reports rows/s of wall time and of process CPU time (which
// includes the GC's background work) since cpu0.
func reportRates(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(benchRows)*float64(b.N)/cpu.Seconds(), "rows/cpu-s")
	}
}
