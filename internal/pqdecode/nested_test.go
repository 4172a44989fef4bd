package pqdecode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// nestedOpts controls random list/map generation.
type nestedOpts struct {
	genOpts
	emptyRate    float64 // share of present lists/maps that are empty
	elemNullRate float64 // share of null elements / map values (when nullable)
	maxEntries   int     // entries per non-empty list/map: 1..maxEntries
}

// nestedSchema holds every supported list/map shape plus two flat columns
// (ReadField must handle those too). Fields named req_* are non-nullable.
func nestedSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "l_i64", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
		{Name: "l_i64_nn", Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Int64), Nullable: true},
		{Name: "l_s", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "l_s_nn", Type: arrow.ListOfNonNullable(arrow.BinaryTypes.String), Nullable: true},
		{Name: "req_l_s", Type: arrow.ListOf(arrow.BinaryTypes.String)},
		{Name: "l_b", Type: arrow.ListOf(arrow.FixedWidthTypes.Boolean), Nullable: true},
		{Name: "l_f32", Type: arrow.ListOf(arrow.PrimitiveTypes.Float32), Nullable: true},
		{Name: "l_date", Type: arrow.ListOf(arrow.FixedWidthTypes.Date32), Nullable: true},
		{Name: "m_ss", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
		{Name: "m_si", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64), Nullable: true},
		{Name: "m_id", Type: arrow.MapOf(arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Float64), Nullable: true},
		{Name: "req_m_ss", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)},
		{Name: "m_ss_nn", Type: mapNonNullItems(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "i64", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
}

func mapNonNullItems(k, v arrow.DataType) *arrow.MapType {
	m := arrow.MapOf(k, v)
	m.SetItemNullable(false)
	return m
}

// genNested fills sc with random data (lists, maps and flat primitives).
func genNested(mem memory.Allocator, sc *arrow.Schema, rng *rand.Rand, o nestedOpts) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	words := make([]string, max(o.card, 1))
	for i := range words {
		words[i] = randString(rng, o.maxLen)
	}
	prim := func(fb array.Builder, nullable bool) {
		if nullable && o.elemNullRate > 0 && rng.Float64() < o.elemNullRate {
			fb.AppendNull()
			return
		}
		switch fb := fb.(type) {
		case *array.StringBuilder:
			if o.card == 0 {
				fb.Append(randString(rng, o.maxLen))
			} else {
				fb.Append(words[rng.IntN(len(words))])
			}
		case *array.Int32Builder:
			fb.Append(int32(rng.IntN(1000)) - 500)
		case *array.Date32Builder:
			fb.Append(arrow.Date32(rng.IntN(30000)))
		case *array.Int64Builder:
			if rng.IntN(2) == 0 {
				fb.Append(int64(rng.IntN(50)))
			} else {
				fb.Append(int64(rng.Uint64()))
			}
		case *array.Float32Builder:
			fb.Append(rng.Float32())
		case *array.Float64Builder:
			fb.Append(float64(rng.IntN(100)) / 4)
		case *array.BooleanBuilder:
			fb.Append(rng.IntN(3) == 0)
		default:
			panic(fmt.Sprintf("unhandled builder %T", fb))
		}
	}
	entries := func() int {
		if rng.Float64() < o.emptyRate {
			return 0
		}
		return 1 + rng.IntN(max(o.maxEntries, 1))
	}
	for ci, f := range sc.Fields() {
		fb := b.Field(ci)
		for r := 0; r < o.rows; r++ {
			if f.Nullable && o.nullRate > 0 && rng.Float64() < o.nullRate {
				fb.AppendNull()
				continue
			}
			switch fb := fb.(type) {
			case *array.MapBuilder:
				fb.Append(true)
				mt := f.Type.(*arrow.MapType)
				for k := entries(); k > 0; k-- {
					prim(fb.KeyBuilder(), false)
					prim(fb.ItemBuilder(), mt.ItemField().Nullable)
				}
			case *array.ListBuilder:
				fb.Append(true)
				nullable := f.Type.(*arrow.ListType).ElemField().Nullable
				for k := entries(); k > 0; k-- {
					prim(fb.ValueBuilder(), nullable)
				}
			default:
				prim(fb, false)
			}
		}
	}
	return b.NewRecordBatch()
}

// compareFields reads every top-level field of every row group with
// ReadField and with pqarrow and requires equal arrays. Fields named in
// unsupported must report SupportedField false (and ReadField must fail);
// every other field must be supported. It returns the number of chunks
// compared.
func compareFields(t testing.TB, data []byte, mem memory.Allocator, unsupported ...string) int {
	t.Helper()
	pf, fr, refMem, done := openForCompare(t, data, mem)
	defer done()
	skip := map[string]bool{}
	for _, s := range unsupported {
		skip[s] = true
	}
	compared := 0
	ctx := context.Background()
	for rg := 0; rg < pf.NumRowGroups(); rg++ {
		nrows := pf.RowGroup(rg).NumRows()
		for fi, sf := range fr.Manifest.Fields {
			name := sf.Field.Name
			dt := sf.Field.Type
			if skip[name] {
				if SupportedField(pf, rg, fi, dt) {
					t.Errorf("rg %d %s: SupportedField true, want false", rg, name)
				}
				if arr, err := ReadField(pf, rg, fi, dt, mem); err == nil {
					arr.Release()
					t.Errorf("rg %d %s: ReadField succeeded on an unsupported field", rg, name)
				} else if !errors.Is(err, ErrUnsupported) {
					t.Errorf("rg %d %s: %v, want ErrUnsupported", rg, name, err)
				}
				continue
			}
			if !SupportedField(pf, rg, fi, dt) {
				_, why := checkField(pf, rg, fi, dt)
				t.Errorf("rg %d %s: SupportedField false: %v", rg, name, why)
				continue
			}
			got, err := ReadField(pf, rg, fi, dt, mem)
			if err != nil {
				t.Errorf("rg %d %s: ReadField: %v", rg, name, err)
				continue
			}
			want := readPQArrow(t, ctx, fr, rg, fi, refMem)
			checkArray(t, fmt.Sprintf("rg %d %s", rg, name), got, want, nrows)
			checkNestedBuffers(t, fmt.Sprintf("rg %d %s", rg, name), got)
			got.Release()
			want.Release()
			compared++
		}
	}
	return compared
}

// checkNestedBuffers checks that a list/map without null rows has no
// validity buffer and that the offsets start at 0 and end at the child
// length.
func checkNestedBuffers(t testing.TB, what string, a arrow.Array) {
	t.Helper()
	l, ok := a.(array.ListLike)
	if !ok {
		return
	}
	if a.NullN() == 0 && a.Data().Buffers()[0] != nil {
		t.Errorf("%s: no null rows but a validity buffer", what)
	}
	if a.Len() > 0 {
		s, _ := l.ValueOffsets(0)
		_, e := l.ValueOffsets(a.Len() - 1)
		if s != 0 || int(e) != l.ListValues().Len() {
			t.Errorf("%s: offsets span [%d,%d), child has %d values", what, s, e, l.ListValues().Len())
		}
	}
	if c := l.ListValues(); c.NullN() == 0 && c.Data().Buffers()[0] != nil && c.DataType().ID() != arrow.STRUCT {
		t.Errorf("%s: child has no nulls but a validity buffer", what)
	}
}

type nestedCase struct {
	name  string
	o     nestedOpts
	rg    int64
	props []parquet.WriterProperty
}

func TestReadFieldRoundTrip(t *testing.T) {
	base := nestedOpts{genOpts: genOpts{rows: 3000, nullRate: 0.15, card: 20, maxLen: 12}, emptyRate: 0.1, elemNullRate: 0.2, maxEntries: 6}
	many := base
	many.maxEntries = 200
	many.rows = 400
	hi := base
	hi.card = 0
	allNull := base
	allNull.nullRate = 1
	noNull := base
	noNull.nullRate, noNull.elemNullRate, noNull.emptyRate = 0, 0, 0
	allEmpty := base
	allEmpty.emptyRate = 1
	nullElems := base
	nullElems.elemNullRate = 1
	empty := base
	empty.rows = 0
	v2 := parquet.WithDataPageVersion(parquet.DataPageV2)
	small := parquet.WithDataPageSize(512)
	cases := []nestedCase{
		{"default", base, 1 << 20, nil},
		{"v2", base, 1 << 20, []parquet.WriterProperty{v2}},
		{"small_pages_v1", base, 1 << 20, []parquet.WriterProperty{small}},
		{"small_pages_v2", base, 1 << 20, []parquet.WriterProperty{small, v2}},
		{"many_entries_small_pages", many, 1 << 20, []parquet.WriterProperty{small}},
		{"many_entries_v2_zstd", many, 150, []parquet.WriterProperty{small, v2, parquet.WithCompression(compress.Codecs.Zstd)}},
		{"no_dict", base, 1 << 20, []parquet.WriterProperty{parquet.WithDictionaryDefault(false), small}},
		{"no_dict_v2_snappy", base, 700, []parquet.WriterProperty{parquet.WithDictionaryDefault(false), v2, parquet.WithCompression(compress.Codecs.Snappy)}},
		{"dict_fallback", hi, 1 << 20, []parquet.WriterProperty{parquet.WithDictionaryPageSizeLimit(300), parquet.WithDataPageSize(1024)}},
		{"dict_fallback_v2", hi, 1 << 20, []parquet.WriterProperty{parquet.WithDictionaryPageSizeLimit(300), parquet.WithDataPageSize(1024), v2}},
		{"row_groups", base, 333, []parquet.WriterProperty{small, parquet.WithCompression(compress.Codecs.Snappy)}},
		{"all_null", allNull, 1000, []parquet.WriterProperty{small}},
		{"no_nulls", noNull, 1000, []parquet.WriterProperty{small, v2}},
		{"all_empty", allEmpty, 1000, nil},
		{"null_elements", nullElems, 1000, []parquet.WriterProperty{small}},
		{"zero_rows", empty, 1000, nil},
		{"v1_format", base, 1000, []parquet.WriterProperty{parquet.WithVersion(parquet.V1_0), small}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rec := genNested(mem, nestedSchema(), rand.New(rand.NewPCG(uint64(i), 7)), c.o)
			data := writeParquet(t, rec, c.rg, c.props...)
			rec.Release()
			n := compareFields(t, data, mem)
			if c.o.rows > 0 && n == 0 {
				t.Error("nothing compared")
			}
		})
	}
}

// TestReadFieldRandom writes random nested data with random writer settings
// and requires ReadField to agree with pqarrow.
func TestReadFieldRandom(t *testing.T) {
	iters := 24
	if testing.Short() {
		iters = 6
	}
	codecs := []compress.Compression{compress.Codecs.Uncompressed, compress.Codecs.Snappy, compress.Codecs.Zstd, compress.Codecs.Gzip}
	for it := 0; it < iters; it++ {
		rng := rand.New(rand.NewPCG(uint64(it), 1234))
		o := nestedOpts{
			genOpts: genOpts{
				rows:     rng.IntN(2000),
				nullRate: []float64{0, 0.01, 0.3, 0.9, 1}[rng.IntN(5)],
				card:     []int{0, 1, 3, 200}[rng.IntN(4)],
				maxLen:   []int{0, 3, 40}[rng.IntN(3)],
			},
			emptyRate:    []float64{0, 0.1, 0.5, 1}[rng.IntN(4)],
			elemNullRate: []float64{0, 0.05, 0.5, 1}[rng.IntN(4)],
			maxEntries:   []int{1, 2, 5, 50}[rng.IntN(4)],
		}
		props := []parquet.WriterProperty{
			parquet.WithDataPageSize(int64(64 << rng.IntN(12))),
			parquet.WithDictionaryDefault(rng.IntN(4) != 0),
			parquet.WithDictionaryPageSizeLimit(int64(128 << rng.IntN(10))),
			parquet.WithCompression(codecs[rng.IntN(len(codecs))]),
			parquet.WithVersion(parquet.V2_LATEST),
		}
		if rng.IntN(2) == 0 {
			props = append(props, parquet.WithDataPageVersion(parquet.DataPageV2))
		}
		rgRows := int64(1 + rng.IntN(max(o.rows, 1)))
		name := fmt.Sprintf("%d_rows%d_rg%d_null%v_empty%v_enull%v_n%d", it, o.rows, rgRows, o.nullRate, o.emptyRate, o.elemNullRate, o.maxEntries)
		t.Run(name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rec := genNested(mem, nestedSchema(), rng, o)
			data := writeParquet(t, rec, rgRows, props...)
			rec.Release()
			compareFields(t, data, mem)
		})
	}
}

// TestSupportedFieldUnsupported: shapes ReadField does not handle must be
// reported unsupported (and pqarrow must still be what reads them).
func TestSupportedFieldUnsupported(t *testing.T) {
	st := arrow.StructOf(arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32, Nullable: true})
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "l_struct", Type: arrow.ListOf(st), Nullable: true},
		{Name: "l_list", Type: arrow.ListOf(arrow.ListOf(arrow.PrimitiveTypes.Int64)), Nullable: true},
		{Name: "m_struct", Type: arrow.MapOf(arrow.BinaryTypes.String, st), Nullable: true},
		{Name: "m_list", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.ListOf(arrow.PrimitiveTypes.Int32)), Nullable: true},
		{Name: "struct_l", Type: arrow.StructOf(arrow.Field{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true}), Nullable: true},
		{Name: "l_ok", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
		{Name: "l_large", Type: arrow.LargeListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
		{Name: "l_u16", Type: arrow.ListOf(arrow.PrimitiveTypes.Uint16), Nullable: true},
		{Name: "l_dec", Type: arrow.ListOf(&arrow.Decimal128Type{Precision: 10, Scale: 2}), Nullable: true},
		{Name: "l_ts96", Type: arrow.ListOf(arrow.FixedWidthTypes.Timestamp_ns), Nullable: true},
	}, nil)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	// Random data through arrow-go's own JSON-free path: build all nulls and
	// empties plus a few values via array.RecordFromJSON.
	js := `[
	 {"l_struct":[{"a":1},null],"l_list":[[1,2],null,[]],"m_struct":[{"key":"k","value":{"a":3}}],"m_list":[{"key":"k","value":[1]}],"struct_l":{"l":[1,null]},"l_ok":[1,null],"l_large":[1],"l_u16":[1],"l_dec":["1.25"],"l_ts96":["2020-01-01T00:00:00Z"]},
	 {"l_struct":null,"l_list":null,"m_struct":null,"m_list":null,"struct_l":null,"l_ok":null,"l_large":null,"l_u16":null,"l_dec":null,"l_ts96":null},
	 {"l_struct":[],"l_list":[],"m_struct":[],"m_list":[],"struct_l":{"l":null},"l_ok":[],"l_large":[],"l_u16":[],"l_dec":[],"l_ts96":[]}
	]`
	rec, _, err := array.RecordFromJSON(mem, sc, strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	unsupported := []string{"l_struct", "l_list", "m_struct", "m_list", "struct_l", "l_large", "l_u16", "l_dec"}
	data := writeParquet(t, rec, 1000)
	// INT96 timestamps in a list (deprecated) are not decoded either.
	tbl := array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
	var buf96 bytes.Buffer
	if err := writeInt96(tbl, &buf96); err != nil {
		t.Fatal(err)
	}
	tbl.Release()
	rec.Release()
	if n := compareFields(t, data, mem, unsupported...); n == 0 {
		t.Error("nothing compared")
	}
	unsupported96 := []string{"l_ts96"} // no stored schema: l_large is read as a list
	for _, u := range unsupported {
		if u != "l_large" {
			unsupported96 = append(unsupported96, u)
		}
	}
	compareFields(t, buf96.Bytes(), mem, unsupported96...)

	// Unsupported encodings: DELTA_BINARY_PACKED and DELTA_LENGTH_BYTE_ARRAY.
	sc2 := arrow.NewSchema([]arrow.Field{
		{Name: "l_i64", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64), Nullable: true},
		{Name: "m_ss", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
	}, nil)
	rec2 := genNested(mem, sc2, rand.New(rand.NewPCG(3, 3)), nestedOpts{genOpts: genOpts{rows: 200, nullRate: 0.1, card: 5, maxLen: 5}, maxEntries: 3})
	data2 := writeParquet(t, rec2, 1000, parquet.WithDictionaryDefault(false),
		parquet.WithEncodingFor("l_i64.list.element", parquet.Encodings.DeltaBinaryPacked),
		parquet.WithEncodingFor("m_ss.key_value.value", parquet.Encodings.DeltaLengthByteArray))
	rec2.Release()
	compareFields(t, data2, mem, "l_i64", "m_ss")

	// A data type whose shape differs from the file is not supported.
	pf, err := file.NewParquetReader(bytes.NewReader(data2))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	for _, dt := range []arrow.DataType{
		arrow.PrimitiveTypes.Int64,
		arrow.ListOf(arrow.BinaryTypes.String),
		arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String),
	} {
		if SupportedField(pf, 0, 0, dt) {
			t.Errorf("list<int64> column supported as %s", dt)
		}
	}
	if SupportedField(pf, 0, 1, arrow.ListOf(arrow.BinaryTypes.String)) {
		t.Error("map column supported as a list")
	}
	if SupportedField(pf, 0, 2, arrow.PrimitiveTypes.Int64) || SupportedField(pf, 0, -1, arrow.PrimitiveTypes.Int64) {
		t.Error("field index out of range supported")
	}
}

// rowShape is the structure of one generated list/map row.
type rowShape struct {
	null    bool
	entries []bool // per entry: element / map value is null
}

func genShapes(rng *rand.Rand, rows int, outerOpt, elemOpt bool) []rowShape {
	out := make([]rowShape, rows)
	for i := range out {
		switch x := rng.IntN(10); {
		case outerOpt && x == 0:
			out[i].null = true
		case x == 1:
			// empty
		default:
			k := 1 + rng.IntN(4)
			if rng.IntN(20) == 0 {
				k = 100 + rng.IntN(300)
			}
			out[i].entries = make([]bool, k)
			for j := range out[i].entries {
				out[i].entries[j] = elemOpt && rng.IntN(4) == 0
			}
		}
	}
	return out
}

// shapeLevels returns the levels of a leaf with max rep 1 for shapes:
// defOuter is the level of a present list, defSlot of an element, elemOpt
// whether the leaf itself is optional. It also returns how many values are
// present.
func shapeLevels(shapes []rowShape, defOuter int16, elemOpt bool) (def, rep []int16, nvals int) {
	defSlot := defOuter + 1
	for _, s := range shapes {
		switch {
		case s.null:
			def, rep = append(def, defOuter-1), append(rep, 0)
		case len(s.entries) == 0:
			def, rep = append(def, defOuter), append(rep, 0)
		default:
			for j, isNull := range s.entries {
				d := defSlot
				if elemOpt {
					d++
					if isNull {
						d--
					}
				}
				if d == defSlot+btoi16(elemOpt) {
					nvals++
				}
				def = append(def, d)
				rep = append(rep, int16(min(j, 1)))
			}
		}
	}
	return def, rep, nvals
}

func btoi16(b bool) int16 {
	if b {
		return 1
	}
	return 0
}

// legacySchema: a 2-level list, a bare repeated primitive, a hand-built
// 3-level list and a map with an INT32 value.
func legacySchema() *schema.GroupNode {
	str := schema.StringLogicalType{}
	must := func(n schema.Node, err error) schema.Node {
		if err != nil {
			panic(err)
		}
		return n
	}
	return schema.MustGroup(schema.NewGroupNode("schema", parquet.Repetitions.Required, schema.FieldList{
		must(schema.NewGroupNodeLogical("a", parquet.Repetitions.Optional, schema.FieldList{
			must(schema.NewPrimitiveNode("element", parquet.Repetitions.Repeated, parquet.Types.Int32, -1, -1)),
		}, schema.NewListLogicalType(), -1)),
		must(schema.NewPrimitiveNode("b", parquet.Repetitions.Repeated, parquet.Types.Int64, -1, -1)),
		must(schema.NewGroupNodeLogical("c", parquet.Repetitions.Optional, schema.FieldList{
			must(schema.NewGroupNode("list", parquet.Repetitions.Repeated, schema.FieldList{
				must(schema.NewPrimitiveNodeLogical("element", parquet.Repetitions.Optional, str, parquet.Types.ByteArray, -1, -1)),
			}, -1)),
		}, schema.NewListLogicalType(), -1)),
		must(schema.NewGroupNodeLogical("m", parquet.Repetitions.Optional, schema.FieldList{
			must(schema.NewGroupNode("key_value", parquet.Repetitions.Repeated, schema.FieldList{
				must(schema.NewPrimitiveNodeLogical("key", parquet.Repetitions.Required, str, parquet.Types.ByteArray, -1, -1)),
				must(schema.NewPrimitiveNode("value", parquet.Repetitions.Optional, parquet.Types.Int32, -1, -1)),
			}, -1)),
		}, schema.MapLogicalType{}, -1)),
	}, -1))
}

// writeLegacy writes rows rows per row group of the legacy schema with
// arrow-go's low-level column writers. With badMap the map value column gets
// one more entry than the key column in one row.
func writeLegacy(t testing.TB, rng *rand.Rand, rowGroups, rows int, badMap bool, props ...parquet.WriterProperty) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := file.NewParquetWriter(&buf, legacySchema(), file.WithWriterProps(parquet.NewWriterProperties(props...)))
	ba := func(n int) []parquet.ByteArray {
		out := make([]parquet.ByteArray, n)
		for i := range out {
			out[i] = parquet.ByteArray(randString(rng, 6))
		}
		return out
	}
	i32 := func(n int) []int32 {
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(rng.IntN(100))
		}
		return out
	}
	for g := 0; g < rowGroups; g++ {
		rgw := w.AppendRowGroup()
		next := func() file.ColumnChunkWriter {
			cw, err := rgw.NextColumn()
			if err != nil {
				t.Fatal(err)
			}
			return cw
		}
		// a: optional LIST { repeated int32 }
		def, rep, n := shapeLevels(genShapes(rng, rows, true, false), 1, false)
		if _, err := next().(*file.Int32ColumnChunkWriter).WriteBatch(i32(n), def, rep); err != nil {
			t.Fatal(err)
		}
		// b: repeated int64
		def, rep, n = shapeLevels(genShapes(rng, rows, false, false), 0, false)
		vals := make([]int64, n)
		for i := range vals {
			vals[i] = rng.Int64()
		}
		if _, err := next().(*file.Int64ColumnChunkWriter).WriteBatch(vals, def, rep); err != nil {
			t.Fatal(err)
		}
		// c: optional LIST { repeated group { optional string } }
		def, rep, n = shapeLevels(genShapes(rng, rows, true, true), 1, true)
		if _, err := next().(*file.ByteArrayColumnChunkWriter).WriteBatch(ba(n), def, rep); err != nil {
			t.Fatal(err)
		}
		// m: key and value
		shapes := genShapes(rng, rows, true, true)
		def, rep, n = shapeLevels(shapes, 1, false)
		if _, err := next().(*file.ByteArrayColumnChunkWriter).WriteBatch(ba(n), def, rep); err != nil {
			t.Fatal(err)
		}
		if badMap {
			for i := range shapes {
				if len(shapes[i].entries) > 0 {
					shapes[i].entries = append(shapes[i].entries, false)
					break
				}
			}
		}
		def, rep, n = shapeLevels(shapes, 1, true)
		if _, err := next().(*file.Int32ColumnChunkWriter).WriteBatch(i32(n), def, rep); err != nil {
			t.Fatal(err)
		}
		if err := rgw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReadFieldLegacyLayouts covers layouts other writers produce: the
// legacy 2-level list (repeated primitive inside a LIST group), a bare
// repeated primitive, and hand-written 3-level lists and maps.
func TestReadFieldLegacyLayouts(t *testing.T) {
	for i, props := range [][]parquet.WriterProperty{
		nil,
		{parquet.WithDataPageSize(256)},
		{parquet.WithDataPageSize(256), parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithCompression(compress.Codecs.Snappy)},
		{parquet.WithDictionaryDefault(false), parquet.WithDataPageVersion(parquet.DataPageV2)},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			data := writeLegacy(t, rand.New(rand.NewPCG(uint64(i), 2)), 3, 700, false, props...)
			if n := compareFields(t, data, mem); n != 12 {
				t.Errorf("compared %d chunks, want 12", n)
			}
		})
	}
}

// TestReadFieldMapMismatch: when the key and value columns of a map disagree
// on its entries, ReadField must fail and say so.
func TestReadFieldMapMismatch(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	data := writeLegacy(t, rand.New(rand.NewPCG(1, 1)), 1, 50, true)
	pf, err := file.NewParquetReader(bytes.NewReader(data), file.WithReadProps(parquet.NewReaderProperties(mem)))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	dt := arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int32)
	if !SupportedField(pf, 0, 3, dt) {
		_, why := checkField(pf, 0, 3, dt)
		t.Fatalf("map not supported: %v", why)
	}
	arr, err := ReadField(pf, 0, 3, dt, mem)
	if err == nil {
		arr.Release()
		t.Fatal("ReadField succeeded on a map whose key and value columns disagree")
	}
	if !strings.Contains(err.Error(), "disagree") || isPanic(err) {
		t.Fatalf("unexpected error: %v", err)
	}
	t.Log(err)
}

// TestReadLevelsV1BitPacked checks the deprecated BIT_PACKED level encoding
// (MSB first) for a bit width above 1; no current writer produces it.
func TestReadLevelsV1BitPacked(t *testing.T) {
	// levels 3,1,0,2,3 with bit width 2, MSB first: 11 01 00 10 | 11 000000
	buf := []byte{0b11010010, 0b11000000, 0xAA}
	dst := make([]uint32, 5)
	n, _, err := readLevelsV1(parquet.Encodings.BitPacked, buf, 2, dst)
	if err != nil || n != 2 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if want := []uint32{3, 1, 0, 2, 3}; fmt.Sprint(dst) != fmt.Sprint(want) {
		t.Fatalf("got %v want %v", dst, want)
	}
	if _, _, err := readLevelsV1(parquet.Encodings.BitPacked, buf[:1], 2, dst); err == nil {
		t.Fatal("truncated bit-packed levels accepted")
	}
	if _, _, err := readLevelsV1(parquet.Encodings.RLE, []byte{9, 0, 0, 0, 1}, 2, dst); err == nil {
		t.Fatal("RLE level length beyond the page accepted")
	}
}

// nestedSeedFiles are small nested files whose pages the corruption tests
// and FuzzReadField damage (mostly uncompressed so the damage reaches the
// decoders).
var nestedSeedFiles = sync.OnceValue(func() [][]byte {
	t := &testing.T{}
	mk := func(seed uint64, sc *arrow.Schema, o nestedOpts, props ...parquet.WriterProperty) []byte {
		rec := genNested(memory.DefaultAllocator, sc, rand.New(rand.NewPCG(seed, 1)), o)
		defer rec.Release()
		props = append(props, parquet.WithVersion(parquet.V2_LATEST), parquet.WithStats(false))
		return writeParquet(t, rec, 150, props...)
	}
	mapOnly := arrow.NewSchema([]arrow.Field{
		{Name: "m_ss", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), Nullable: true},
		{Name: "m_si", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64), Nullable: true},
	}, nil)
	o := nestedOpts{genOpts: genOpts{rows: 300, nullRate: 0.2, card: 10, maxLen: 8}, emptyRate: 0.1, elemNullRate: 0.2, maxEntries: 4}
	hi := o
	hi.card = 0
	return [][]byte{
		mk(1, mapOnly, o, parquet.WithDataPageSize(256)),
		mk(2, nestedSchema(), o, parquet.WithDataPageSize(256)),
		mk(3, nestedSchema(), hi, parquet.WithDictionaryDefault(false), parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithDataPageSize(256)),
		mk(4, mapOnly, hi, parquet.WithDictionaryPageSizeLimit(200), parquet.WithDataPageSize(300), parquet.WithDataPageVersion(parquet.DataPageV2)),
		writeLegacy(t, rand.New(rand.NewPCG(5, 5)), 2, 150, false, parquet.WithDataPageSize(256), parquet.WithStats(false)),
	}
})

// validateLoose is ValidateFull except that strings may hold invalid UTF-8
// (corruption can produce it) and so are only checked for their offsets.
func validateLoose(a arrow.Array) error {
	switch a := a.(type) {
	case array.ListLike:
		if a.Len() > 0 {
			prev := int64(-1)
			for i := 0; i < a.Len(); i++ {
				s, e := a.ValueOffsets(i)
				if s < max(prev, 0) || e < s || e > int64(a.ListValues().Len()) {
					return fmt.Errorf("row %d: offsets [%d,%d) of %d values", i, s, e, a.ListValues().Len())
				}
				prev = e
			}
		}
		if m, ok := a.(*array.Map); ok {
			if err := validateLoose(m.Keys()); err != nil {
				return err
			}
			return validateLoose(m.Items())
		}
		return validateLoose(a.ListValues())
	case *array.String:
		offs := a.ValueOffsets()
		for i := 1; i < len(offs); i++ {
			if offs[i] < offs[i-1] || int(offs[i]) > len(a.ValueBytes())+int(offs[0]) {
				return fmt.Errorf("string offset %d invalid", i)
			}
		}
		return nil
	default:
		if v, ok := a.(interface{ ValidateFull() error }); ok {
			return v.ValidateFull()
		}
		return nil
	}
}

// TestCorruptNestedPages damages the nested seed files: ReadField must return
// errors (or, when the damage is not detectable, values) and never panic.
func TestCorruptNestedPages(t *testing.T) {
	corruptSeeds(t, nestedSeedFiles(), readAllCorrupt, rand.New(rand.NewPCG(6, 6)))
}

// FuzzReadField damages a nested seed file (file 0 holds only maps) at a
// fuzzer-chosen place. Run with
// go test -run '^$' -fuzz FuzzReadField -fuzztime 60s ./internal/pqdecode/
func FuzzReadField(f *testing.F) {
	f.Add(uint8(0), uint32(100), uint8(1), uint8(0), uint8(1))
	f.Add(uint8(0), uint32(700), uint8(0xff), uint8(1), uint8(3))
	f.Add(uint8(1), uint32(900), uint8(0xff), uint8(1), uint8(4))
	f.Add(uint8(2), uint32(50), uint8(0x80), uint8(2), uint8(8))
	f.Add(uint8(3), uint32(2000), uint8(7), uint8(0), uint8(2))
	f.Add(uint8(4), uint32(300), uint8(2), uint8(2), uint8(0))
	f.Fuzz(func(t *testing.T, fileIdx uint8, pos uint32, val, mode, n uint8) {
		seeds := nestedSeedFiles()
		readAllCorrupt(t, damage(seeds[int(fileIdx)%len(seeds)], pos, val, mode, n))
	})
}
