package pqdecode

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// TestStreamingPage: with PageStreamingEnabled, arrow-go hands out large
// PLAIN byte-array pages whose Data() holds only the levels. ReadColumn must
// notice and return ErrStreamingPage rather than misread the page.
func TestStreamingPage(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	rec := genRecord(memory.DefaultAllocator, sc, rand.New(rand.NewPCG(9, 9)), genOpts{rows: 200_000, nullRate: 0.1, maxLen: 20})
	defer rec.Release()
	data := writeParquet(t, rec, 200_000, parquet.WithDictionaryDefault(false), parquet.WithDataPageSize(4<<20))

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	props := parquet.NewReaderProperties(mem)
	props.PageStreamingEnabled = true
	pf, err := file.NewParquetReader(bytes.NewReader(data), file.WithReadProps(props))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	arr, err := ReadColumn(pf, 0, 0, arrow.BinaryTypes.String, mem)
	if err == nil {
		arr.Release()
		t.Fatal("ReadColumn succeeded on a streaming page")
	}
	if !errors.Is(err, ErrStreamingPage) {
		t.Fatalf("error %v does not wrap ErrStreamingPage", err)
	}

	// The same file without streaming decodes fine.
	mem2 := memory.NewCheckedAllocator(memory.NewGoAllocator())
	compareFile(t, data, mem2)
	mem2.AssertSize(t, 0)
}

func TestEncryptedUnsupported(t *testing.T) {
	const key = "0123456789012345"
	sc := arrow.NewSchema([]arrow.Field{{Name: "i", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rec := genRecord(memory.DefaultAllocator, sc, rand.New(rand.NewPCG(1, 1)), genOpts{rows: 100})
	defer rec.Release()
	for _, plaintextFooter := range []bool{false, true} {
		var opts []parquet.EncryptOption
		if plaintextFooter {
			opts = append(opts, parquet.WithPlaintextFooter())
		}
		data := writeParquet(t, rec, 100, parquet.WithEncryptionProperties(parquet.NewFileEncryptionProperties(key, opts...)))
		props := parquet.NewReaderProperties(memory.DefaultAllocator)
		props.FileDecryptProps = parquet.NewFileDecryptionProperties(parquet.WithFooterKey(key))
		pf, err := file.NewParquetReader(bytes.NewReader(data), file.WithReadProps(props))
		if err != nil {
			t.Fatal(err)
		}
		if Supported(pf, 0, 0, arrow.PrimitiveTypes.Int64) {
			t.Errorf("plaintext footer %v: encrypted file reported supported", plaintextFooter)
		}
		if arr, err := ReadColumn(pf, 0, 0, arrow.PrimitiveTypes.Int64, memory.DefaultAllocator); err == nil {
			arr.Release()
			t.Errorf("plaintext footer %v: ReadColumn read an encrypted file", plaintextFooter)
		}
		pf.Close()
	}
}

// TestTooLarge: string data past int32 offsets is ErrTooLarge, which tells the caller to fall
// back to a batching reader, before anything is allocated.
func TestTooLarge(t *testing.T) {
	d := &decoder{kind: kindBytes, dataLen: math.MaxInt32 - 10}
	err := d.reserveData(100, 1)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("reserveData past 2 GiB: %v, want ErrTooLarge", err)
	}
}
