package pqdecode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// TestRandomRoundTrip writes random data with random writer settings and
// requires ReadColumn to agree with pqarrow.
func TestRandomRoundTrip(t *testing.T) {
	iters := 24
	if testing.Short() {
		iters = 6
	}
	codecs := []compress.Compression{compress.Codecs.Uncompressed, compress.Codecs.Snappy, compress.Codecs.Zstd, compress.Codecs.Gzip}
	for it := 0; it < iters; it++ {
		rng := rand.New(rand.NewPCG(uint64(it), 99))
		o := genOpts{
			rows:     rng.IntN(4000),
			nullRate: []float64{0, 0.01, 0.3, 0.9, 1}[rng.IntN(5)],
			card:     []int{0, 1, 3, 200}[rng.IntN(4)],
			maxLen:   []int{0, 3, 40}[rng.IntN(3)],
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
		name := fmt.Sprintf("%d_rows%d_rg%d_null%v_card%d_len%d", it, o.rows, rgRows, o.nullRate, o.card, o.maxLen)
		t.Run(name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			rec := genRecord(mem, testSchema(), rng, o)
			data := writeParquet(t, rec, rgRows, props...)
			rec.Release()
			compareFile(t, data, mem)
		})
	}
}

// seedFiles are small files whose pages the corruption tests damage. Most
// are uncompressed so that damage reaches the decoders instead of failing
// decompression.
var seedFiles = sync.OnceValue(func() [][]byte {
	t := &testing.T{}
	mk := func(seed uint64, o genOpts, props ...parquet.WriterProperty) []byte {
		rec := genRecord(memory.DefaultAllocator, testSchema(), rand.New(rand.NewPCG(seed, 1)), o)
		defer rec.Release()
		props = append(props, parquet.WithVersion(parquet.V2_LATEST), parquet.WithStats(false))
		return writeParquet(t, rec, 150, props...)
	}
	o := genOpts{rows: 300, nullRate: 0.3, card: 10, maxLen: 8}
	hi := genOpts{rows: 300, nullRate: 0.1, card: 0, maxLen: 8}
	return [][]byte{
		mk(1, o, parquet.WithDataPageSize(256)),
		mk(2, hi, parquet.WithDictionaryDefault(false), parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithDataPageSize(256)),
		mk(3, hi, parquet.WithDictionaryPageSizeLimit(200), parquet.WithDataPageSize(300)),
		mk(4, o, parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDataPageVersion(parquet.DataPageV2)),
	}
})

// dataRegion returns the range of the file holding column chunk data (after
// the magic, before the footer).
func dataRegion(data []byte) (int, int) {
	footerLen := int(binary.LittleEndian.Uint32(data[len(data)-8:]))
	return 4, len(data) - 8 - footerLen
}

// readAllCorrupt decodes every supported field of every row group of a
// possibly corrupt file (flat fields go through ReadColumn). Errors are fine; panics and malformed arrays are
// not. It returns the number of ReadField errors.
func readAllCorrupt(t testing.TB, data []byte) int {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	pf, err := file.NewParquetReader(bytes.NewReader(data), file.WithReadProps(parquet.NewReaderProperties(mem)))
	if err != nil {
		return 0
	}
	defer pf.Close()
	man, err := pqarrow.NewSchemaManifest(pf.MetaData().Schema, pf.MetaData().KeyValueMetadata(), &pqarrow.ArrowReadProperties{})
	if err != nil {
		return 0
	}
	errs := 0
	for rg := 0; rg < pf.NumRowGroups(); rg++ {
		for fi, sf := range man.Fields {
			dt := sf.Field.Type
			if !SupportedField(pf, rg, fi, dt) {
				continue
			}
			arr, err := ReadField(pf, rg, fi, dt, mem)
			if err != nil {
				if isPanic(err) {
					t.Fatalf("rg %d field %d: %v", rg, fi, err)
				}
				if testing.Verbose() {
					t.Logf("rg %d field %d: %v", rg, fi, err)
				}
				errs++
				continue
			}
			if int64(arr.Len()) != pf.RowGroup(rg).NumRows() {
				t.Errorf("rg %d field %d: %d rows, want %d", rg, fi, arr.Len(), pf.RowGroup(rg).NumRows())
			}
			if err := validateLoose(arr); err != nil {
				t.Errorf("rg %d field %d: invalid array: %v", rg, fi, err)
			}
			arr.Release()
		}
	}
	return errs
}

// TestCorruptPages flips, zeroes and overwrites bytes in the page data of the
// seed files: ReadColumn must return errors (or, when the damage is not
// detectable, values) and never panic.
func TestCorruptPages(t *testing.T) {
	corruptSeeds(t, seedFiles(), readAllCorrupt, rand.New(rand.NewPCG(5, 5)))
}

// corruptSeeds damages each seed file n times (flipped, zeroed and 0xff bytes in
// the page data) and reads it with read, which returns its error count and must
// not panic. Some damage must be detected in every file.
func corruptSeeds(t *testing.T, seeds [][]byte, read func(testing.TB, []byte) int, rng *rand.Rand) {
	n := 300
	if testing.Short() {
		n = 60
	}
	for fi, seed := range seeds {
		if errs := read(t, seed); errs != 0 {
			t.Fatalf("seed file %d: %d errors before corruption", fi, errs)
		}
		lo, hi := dataRegion(seed)
		detected := 0
		for i := 0; i < n; i++ {
			data := bytes.Clone(seed)
			pos := lo + rng.IntN(hi-lo)
			switch i % 3 {
			case 0:
				data[pos] ^= byte(1 + rng.IntN(255))
			case 1:
				clear(data[pos:min(pos+16, hi)])
			case 2:
				for j := pos; j < min(pos+4, hi); j++ {
					data[j] = 0xff
				}
			}
			if read(t, data) > 0 {
				detected++
			}
		}
		if detected == 0 {
			t.Errorf("seed file %d: no corruption detected in %d tries", fi, n)
		}
		t.Logf("seed file %d: %d/%d corruptions detected", fi, detected, n)
	}
}

// damage changes up to 32 bytes of the page data of a copy of data at a
// fuzzer-chosen place and returns the copy.
func damage(seed []byte, pos uint32, val, mode, n uint8) []byte {
	data := bytes.Clone(seed)
	lo, hi := dataRegion(data)
	p := lo + int(pos%uint32(hi-lo))
	end := min(p+1+int(n%32), hi)
	for j := p; j < end; j++ {
		switch mode % 3 {
		case 0:
			data[j] ^= val
		case 1:
			data[j] = val
		case 2:
			data[j] += val
		}
	}
	return data
}

// FuzzReadColumn damages a seed file at a fuzzer-chosen place. Run with
// go test -run '^$' -fuzz FuzzReadColumn -fuzztime 30s ./internal/pqdecode/
func FuzzReadColumn(f *testing.F) {
	f.Add(uint8(0), uint32(100), uint8(1), uint8(0), uint8(1))
	f.Add(uint8(1), uint32(900), uint8(0xff), uint8(1), uint8(4))
	f.Add(uint8(2), uint32(50), uint8(0x80), uint8(2), uint8(8))
	f.Add(uint8(3), uint32(2000), uint8(7), uint8(0), uint8(2))
	f.Fuzz(func(t *testing.T, fileIdx uint8, pos uint32, val, mode, n uint8) {
		seeds := seedFiles()
		readAllCorrupt(t, damage(seeds[int(fileIdx)%len(seeds)], pos, val, mode, n))
	})
}
