package pqdecode

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
)

type rtCase struct {
	name  string
	rows  int
	rg    int64 // rows per row group
	gen   genOpts
	props []parquet.WriterProperty
}

func roundTripCases() []rtCase {
	base := genOpts{nullRate: 0.2, card: 50, maxLen: 12}
	with := func(o genOpts, f func(*genOpts)) genOpts { f(&o); return o }
	v2 := parquet.WithDataPageVersion(parquet.DataPageV2)
	latest := parquet.WithVersion(parquet.V2_LATEST)
	return []rtCase{
		{name: "default", rows: 3000, rg: 3000, gen: base},
		{name: "dict_off", rows: 3000, rg: 3000, gen: base, props: []parquet.WriterProperty{parquet.WithDictionaryDefault(false)}},
		{name: "dict_fallback", rows: 5000, rg: 5000, gen: with(base, func(o *genOpts) { o.card = 0; o.maxLen = 30 }),
			props: []parquet.WriterProperty{parquet.WithDictionaryPageSizeLimit(512), parquet.WithDataPageSize(1024)}},
		{name: "v2_zstd", rows: 3000, rg: 1000, gen: base,
			props: []parquet.WriterProperty{v2, latest, parquet.WithCompression(compress.Codecs.Zstd)}},
		{name: "v2_snappy_fallback", rows: 4000, rg: 4000, gen: with(base, func(o *genOpts) { o.card = 0 }),
			props: []parquet.WriterProperty{v2, latest, parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDictionaryPageSizeLimit(300), parquet.WithDataPageSize(700)}},
		{name: "v1_gzip_small_pages", rows: 3000, rg: 1200, gen: base,
			props: []parquet.WriterProperty{parquet.WithCompression(compress.Codecs.Gzip), parquet.WithDataPageSize(256)}},
		{name: "v2_uncompressed_small_pages_nodict", rows: 2500, rg: 2500, gen: base,
			props: []parquet.WriterProperty{v2, latest, parquet.WithDictionaryDefault(false), parquet.WithDataPageSize(200)}},
		{name: "snappy_multi_rg", rows: 5000, rg: 700, gen: base,
			props: []parquet.WriterProperty{parquet.WithCompression(compress.Codecs.Snappy)}},
		{name: "no_nulls", rows: 2000, rg: 2000, gen: with(base, func(o *genOpts) { o.nullRate = 0 })},
		{name: "all_nulls", rows: 2000, rg: 900, gen: with(base, func(o *genOpts) { o.nullRate = 1 }),
			props: []parquet.WriterProperty{v2, latest}},
		{name: "mostly_nulls_v2_small_pages", rows: 3000, rg: 3000, gen: with(base, func(o *genOpts) { o.nullRate = 0.97 }),
			props: []parquet.WriterProperty{v2, latest, parquet.WithDataPageSize(128)}},
		{name: "empty_strings", rows: 2000, rg: 2000, gen: with(base, func(o *genOpts) { o.maxLen = 0 })},
		{name: "single_row", rows: 1, rg: 1, gen: base},
		{name: "zero_rows", rows: 0, rg: 10, gen: base},
	}
}

func TestRoundTrip(t *testing.T) {
	for i, tc := range roundTripCases() {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			o := tc.gen
			o.rows = tc.rows
			rec := genRecord(mem, testSchema(), rng, o)
			data := writeParquet(t, rec, tc.rg, tc.props...)
			rec.Release()
			n := compareFile(t, data, mem)
			if tc.rows > 0 && n == 0 {
				t.Fatal("nothing compared")
			}
		})
	}
}

// TestRoundTripEncodingsUsed makes sure the cases above really exercise what
// they claim: dictionary fallback (dictionary and plain data pages in one
// chunk), V2 pages, and many pages per chunk.
func TestRoundTripEncodingsUsed(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sc := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	rec := genRecord(memory.DefaultAllocator, sc, rng, genOpts{rows: 5000, nullRate: 0.1, card: 0, maxLen: 30})
	defer rec.Release()
	for _, v := range []parquet.DataPageVersion{parquet.DataPageV1, parquet.DataPageV2} {
		data := writeParquet(t, rec, 5000, parquet.WithDataPageVersion(v), parquet.WithDictionaryPageSizeLimit(512), parquet.WithDataPageSize(1024))
		pf, err := file.NewParquetReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		pr, err := pf.RowGroup(0).GetColumnPageReader(0)
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for pr.Next() {
			p := pr.Page()
			counts[fmt.Sprintf("%T/%s", p, parquet.Encoding(p.Encoding()))]++
		}
		pr.Close()
		pf.Close()
		pageType := "*file.DataPageV1"
		if v == parquet.DataPageV2 {
			pageType = "*file.DataPageV2"
		}
		if counts["*file.DictionaryPage/PLAIN"] != 1 || counts[pageType+"/PLAIN"] == 0 ||
			counts[pageType+"/RLE_DICTIONARY"]+counts[pageType+"/PLAIN_DICTIONARY"] == 0 {
			t.Errorf("version %v: expected dictionary + dictionary pages + plain fallback pages, got %v", v, counts)
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		compareFile(t, data, mem)
		mem.AssertSize(t, 0)
	}
}

// TestNestedAndUnsupported checks Supported is false for nested leaves,
// DELTA encodings, decimals, int96 and mismatched timestamp units, and that
// the flat columns next to them still decode.
func TestNestedAndUnsupported(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "delta", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "dec", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true},
		{Name: "m", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
		{Name: "st", Type: arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int32}), Nullable: true},
		{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true},
		{Name: "i16", Type: arrow.PrimitiveTypes.Int16, Nullable: true},
		{Name: "u32", Type: arrow.PrimitiveTypes.Uint32, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, sc)
	for i := 0; i < 100; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.Int64Builder).Append(int64(i * 3))
		b.Field(2).(*array.Decimal128Builder).AppendNull()
		mb := b.Field(3).(*array.MapBuilder)
		mb.Append(true)
		mb.KeyBuilder().(*array.StringBuilder).Append("k")
		mb.ItemBuilder().(*array.StringBuilder).Append(fmt.Sprint(i))
		sb := b.Field(4).(*array.StructBuilder)
		sb.Append(true)
		sb.FieldBuilder(0).(*array.Int32Builder).Append(int32(i))
		lb := b.Field(5).(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Int32Builder).Append(int32(i))
		b.Field(6).(*array.Int16Builder).Append(int16(i))
		b.Field(7).(*array.Uint32Builder).Append(uint32(i))
	}
	rec := b.NewRecordBatch()
	b.Release()
	data := writeParquet(t, rec, 100,
		parquet.WithEncodingFor("delta", parquet.Encodings.DeltaBinaryPacked),
		parquet.WithDictionaryFor("delta", false))
	rec.Release()
	if n := compareFile(t, data, mem, "delta", "dec", "i16", "u32"); n != 1 {
		t.Errorf("compared %d columns, want 1 (id)", n)
	}

	// Mismatched types for supported physical types.
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	for _, dt := range []arrow.DataType{
		arrow.PrimitiveTypes.Int32, arrow.BinaryTypes.String, arrow.PrimitiveTypes.Float64,
		&arrow.TimestampType{Unit: arrow.Microsecond}, arrow.BinaryTypes.LargeString,
	} {
		if Supported(pf, 0, 0, dt) {
			t.Errorf("int64 column reported supported as %s", dt)
		}
	}
	if Supported(pf, 5, 0, arrow.PrimitiveTypes.Int64) || Supported(pf, 0, 99, arrow.PrimitiveTypes.Int64) ||
		Supported(pf, -1, 0, arrow.PrimitiveTypes.Int64) {
		t.Error("out of range row group / column reported supported")
	}
}

func TestTimestampUnits(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	units := []arrow.TimeUnit{arrow.Millisecond, arrow.Microsecond, arrow.Nanosecond}
	var fields []arrow.Field
	for _, u := range units {
		fields = append(fields, arrow.Field{Name: u.String(), Type: &arrow.TimestampType{Unit: u, TimeZone: "UTC"}, Nullable: true})
	}
	sc := arrow.NewSchema(fields, nil)
	rec := genRecord(mem, sc, rand.New(rand.NewPCG(3, 3)), genOpts{rows: 500, nullRate: 0.3})
	data := writeParquet(t, rec, 500, parquet.WithVersion(parquet.V2_LATEST))
	rec.Release()
	compareFile(t, data, mem)

	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	for leaf, fu := range units {
		for _, u := range units {
			for _, tz := range []string{"", "UTC", "Europe/Paris"} {
				dt := &arrow.TimestampType{Unit: u, TimeZone: tz}
				if got, want := Supported(pf, 0, leaf, dt), u == fu; got != want {
					t.Errorf("file unit %s, arrow %s: Supported %v, want %v", fu, dt, got, want)
				}
			}
		}
		if Supported(pf, 0, leaf, arrow.PrimitiveTypes.Int64) {
			t.Errorf("timestamp %s supported as plain int64", fu)
		}
	}
	// The time zone is the caller's business: the array keeps dt.
	dt := &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "Asia/Tokyo"}
	arr, err := ReadColumn(pf, 0, 0, dt, mem)
	if err != nil {
		t.Fatal(err)
	}
	if !arrow.TypeEqual(arr.DataType(), dt) {
		t.Errorf("type %s, want %s", arr.DataType(), dt)
	}
	arr.Release()
}

func TestInt96Unsupported(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Nanosecond}, Nullable: true}}, nil)
	rec := genRecord(memory.DefaultAllocator, sc, rand.New(rand.NewPCG(1, 1)), genOpts{rows: 10})
	defer rec.Release()
	tbl := array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
	defer tbl.Release()
	var buf bytes.Buffer
	if err := writeInt96(tbl, &buf); err != nil {
		t.Fatal(err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if pt := pf.MetaData().Schema.Column(0).PhysicalType(); pt != parquet.Types.Int96 {
		t.Fatalf("physical type %s, want INT96", pt)
	}
	for _, dt := range []arrow.DataType{sc.Field(0).Type, arrow.PrimitiveTypes.Int64, arrow.BinaryTypes.Binary} {
		if Supported(pf, 0, 0, dt) {
			t.Errorf("int96 supported as %s", dt)
		}
	}
}
