package compaction

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/google/uuid"

	"github.com/lakehouse/lake/txlog"
)

// The deletion vector format of the protocol's appendix "Deletion Vector Format", as Spark
// (RoaringBitmapArray, portable) and Trino/delta-rs write it.
const (
	// dvPortableMagic starts a serialised RoaringBitmapArray in the portable format.
	dvPortableMagic = 1681511377
	// dvFileVersion is the first byte of a deletion vector file.
	dvFileVersion = 1
	// DefaultDVInlineMaxBytes is the largest serialised vector stored inline in the log.
	DefaultDVInlineMaxBytes = 64
)

const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

// encodeDVBitmap serialises row indexes as the protocol's RoaringBitmapArray: the magic number
// (little-endian), the number of 32-bit bitmaps as a 64-bit integer, then for every high key from
// 0 to the largest one (empty bitmaps included, as Spark's array-backed implementation writes
// them) the key and the run-optimised 32-bit RoaringBitmap in the portable format.
func encodeDVBitmap(rows *roaring64.Bitmap) ([]byte, error) {
	var parts []*roaring.Bitmap
	it := rows.Iterator()
	for it.HasNext() {
		v := it.Next()
		hi := int(v >> 32)
		for len(parts) <= hi {
			parts = append(parts, roaring.New())
		}
		parts[hi].Add(uint32(v))
	}
	out := binary.LittleEndian.AppendUint32(nil, dvPortableMagic)
	out = binary.LittleEndian.AppendUint64(out, uint64(len(parts)))
	for i, bm := range parts {
		bm.RunOptimize()
		out = binary.LittleEndian.AppendUint32(out, uint32(i))
		b, err := bm.ToBytes()
		if err != nil {
			return nil, fmt.Errorf("deletion vector: %w", err)
		}
		out = append(out, b...)
	}
	return out, nil
}

// encodeZ85 encodes b as Z85, padding it with zero bytes to a multiple of 4 first (as Spark's
// Base85Codec.encodeBytes does; the descriptor's sizeInBytes says how many bytes are real).
func encodeZ85(b []byte) string {
	if r := len(b) % 4; r != 0 {
		b = append(b[:len(b):len(b)], make([]byte, 4-r)...)
	}
	out := make([]byte, 0, len(b)/4*5)
	for i := 0; i < len(b); i += 4 {
		v := binary.BigEndian.Uint32(b[i:])
		var blk [5]byte
		for j := 4; j >= 0; j-- {
			blk[j] = z85Alphabet[v%85]
			v /= 85
		}
		out = append(out, blk[:]...)
	}
	return string(out)
}

// dvFileName is the object name of a deletion vector file at the table's root.
func dvFileName(id uuid.UUID) string { return "deletion_vector_" + id.String() + ".bin" }

// dvFile builds one deletion vector file: the format version byte, then per vector its size
// (big-endian), its bytes and the CRC-32 of its bytes (big-endian).
type dvFile struct {
	id  uuid.UUID
	buf []byte
}

func newDVFile(id uuid.UUID) *dvFile { return &dvFile{id: id, buf: []byte{dvFileVersion}} }

// add appends a serialised vector and returns its descriptor (storage type "u", no random
// prefix: the file sits at the table's root, as Spark writes it).
func (f *dvFile) add(data []byte, cardinality int64) *txlog.DeletionVector {
	off := int32(len(f.buf))
	f.buf = binary.BigEndian.AppendUint32(f.buf, uint32(len(data)))
	f.buf = append(f.buf, data...)
	f.buf = binary.BigEndian.AppendUint32(f.buf, crc32.ChecksumIEEE(data))
	return &txlog.DeletionVector{
		StorageType: "u", PathOrInlineDv: encodeZ85(f.id[:]), Offset: &off,
		SizeInBytes: int32(len(data)), Cardinality: cardinality,
	}
}

// inlineDV is the descriptor of a vector stored in the log (storage type "i").
func inlineDV(data []byte, cardinality int64) *txlog.DeletionVector {
	return &txlog.DeletionVector{StorageType: "i", PathOrInlineDv: encodeZ85(data), SizeInBytes: int32(len(data)), Cardinality: cardinality}
}
