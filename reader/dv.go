package reader

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync/atomic"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/google/uuid"

	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// dvMagic starts a serialised RoaringBitmapArray (protocol "Deletion Vector Format").
const dvMagic = 1681511377

const z85Alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

var z85Decode = func() (t [256]int16) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(z85Alphabet); i++ {
		t[z85Alphabet[i]] = int16(i)
	}
	return t
}()

// decodeZ85 decodes Z85 text (a multiple of 5 characters) into 4 bytes per 5 characters.
func decodeZ85(s string) ([]byte, error) {
	if len(s)%5 != 0 {
		return nil, fmt.Errorf("z85: length %d is not a multiple of 5", len(s))
	}
	out := make([]byte, 0, len(s)/5*4)
	for i := 0; i < len(s); i += 5 {
		var v uint64
		for j := 0; j < 5; j++ {
			d := z85Decode[s[i+j]]
			if d < 0 {
				return nil, fmt.Errorf("z85: invalid character %q at %d", s[i+j], i+j)
			}
			v = v*85 + uint64(d)
		}
		if v > 0xFFFFFFFF {
			return nil, fmt.Errorf("z85: block at %d overflows", i)
		}
		out = binary.BigEndian.AppendUint32(out, uint32(v))
	}
	return out, nil
}

// dvPath is the object key of an on-disk deletion vector relative to the table root, or the
// absolute URI of a 'p' vector.
func dvPath(dv *txlog.DeletionVector) (key string, absolute bool, err error) {
	switch dv.StorageType {
	case "u":
		p := dv.PathOrInlineDv
		if len(p) < 20 {
			return "", false, fmt.Errorf("deletion vector %q: a relative path needs a 20-character encoded UUID", p)
		}
		prefix, enc := p[:len(p)-20], p[len(p)-20:]
		raw, err := decodeZ85(enc)
		if err != nil {
			return "", false, fmt.Errorf("deletion vector %q: %w", p, err)
		}
		id, err := uuid.FromBytes(raw)
		if err != nil {
			return "", false, fmt.Errorf("deletion vector %q: %w", p, err)
		}
		name := "deletion_vector_" + id.String() + ".bin"
		if prefix != "" {
			name = prefix + "/" + name
		}
		return name, false, nil
	case "p":
		return dv.PathOrInlineDv, true, nil
	}
	return "", false, fmt.Errorf("deletion vector storage type %q has no file", dv.StorageType)
}

// loadDV returns the deleted row indexes of a data file. open reads size bytes at offset of
// the deletion vector's file (a key relative to the table, or an absolute URI).
func loadDV(ctx context.Context, dv *txlog.DeletionVector, read func(ctx context.Context, key string, absolute bool, off, n int64) ([]byte, error)) (*roaring64.Bitmap, string, error) {
	var data []byte
	var where string
	switch dv.StorageType {
	case "i":
		raw, err := decodeZ85(dv.PathOrInlineDv)
		if err != nil {
			return nil, "inline deletion vector", err
		}
		if int(dv.SizeInBytes) > len(raw) || dv.SizeInBytes < 4 {
			return nil, "inline deletion vector", fmt.Errorf("sizeInBytes %d does not fit the %d decoded bytes", dv.SizeInBytes, len(raw))
		}
		data, where = raw[:dv.SizeInBytes], "inline deletion vector"
	case "u", "p":
		key, abs, err := dvPath(dv)
		if err != nil {
			return nil, dv.PathOrInlineDv, err
		}
		where = key
		off := int64(0)
		if dv.Offset != nil {
			off = int64(*dv.Offset)
		}
		if dv.SizeInBytes < 4 {
			return nil, where, fmt.Errorf("deletion vector sizeInBytes %d is too small", dv.SizeInBytes)
		}
		buf, err := read(ctx, key, abs, off, int64(dv.SizeInBytes)+8)
		if err != nil {
			return nil, where, err
		}
		if len(buf) != int(dv.SizeInBytes)+8 {
			return nil, where, fmt.Errorf("deletion vector at offset %d: read %d bytes, want %d (truncated file?)", off, len(buf), dv.SizeInBytes+8)
		}
		if n := binary.BigEndian.Uint32(buf); n != uint32(dv.SizeInBytes) {
			return nil, where, fmt.Errorf("deletion vector at offset %d: stored size %d, log says %d", off, n, dv.SizeInBytes)
		}
		data = buf[4 : 4+dv.SizeInBytes]
		if want, got := binary.BigEndian.Uint32(buf[4+dv.SizeInBytes:]), crc32.ChecksumIEEE(data); want != got {
			return nil, where, fmt.Errorf("deletion vector at offset %d: checksum mismatch (stored %08x, computed %08x)", off, want, got)
		}
	default:
		return nil, "", unsupported(fmt.Sprintf("deletion vector storage type %q", dv.StorageType), "")
	}
	bm, err := decodeBitmap(data)
	if err != nil {
		return nil, where, err
	}
	if dv.Cardinality > 0 && bm.GetCardinality() != uint64(dv.Cardinality) {
		return nil, where, fmt.Errorf("deletion vector holds %d rows, log says cardinality %d", bm.GetCardinality(), dv.Cardinality)
	}
	return bm, where, nil
}

// dvNativeMagic starts the older "native" RoaringBitmapArray serialisation (the protocol's
// inline example uses it, with a big-endian header): a 32-bit bitmap count, then per bitmap a
// 32-bit size and a 32-bit RoaringBitmap whose high bits are its index.
const dvNativeMagic = 1681511376

// decodeBitmap decodes a serialised RoaringBitmapArray: the portable format the protocol
// specifies (magic 1681511377, little-endian, then a portable 64-bit RoaringBitmap), or the
// native one (magic 1681511376, header in either byte order).
func decodeBitmap(data []byte) (bm *roaring64.Bitmap, err error) {
	defer func() {
		// The roaring decoder trusts the lengths it reads; corrupt input must be an error.
		if r := recover(); r != nil {
			bm, err = nil, fmt.Errorf("deletion vector: corrupt bitmap (%v)", r)
		}
	}()
	if len(data) < 8 {
		return nil, errors.New("deletion vector: too short")
	}
	switch {
	case binary.LittleEndian.Uint32(data) == dvMagic:
	case binary.LittleEndian.Uint32(data) == dvNativeMagic:
		return decodeNative(data[4:], binary.LittleEndian)
	case binary.BigEndian.Uint32(data) == dvNativeMagic:
		return decodeNative(data[4:], binary.BigEndian)
	default:
		return nil, fmt.Errorf("deletion vector: magic number %d, want %d", binary.LittleEndian.Uint32(data), dvMagic)
	}
	body := data[4:]
	if len(body) < 8 {
		return nil, errors.New("deletion vector: too short")
	}
	// roaring64 allocates numBuckets entries up front: bound it by what the bytes can hold
	// (each bucket is at least a 4-byte key and an 8-byte header).
	if n := binary.LittleEndian.Uint64(body); n > uint64(len(body)-8)/12 {
		return nil, fmt.Errorf("deletion vector: %d buckets cannot fit in %d bytes", n, len(body))
	}
	bm = roaring64.New()
	if _, err := bm.ReadFrom(bytes.NewReader(body)); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("deletion vector: truncated bitmap")
		}
		return nil, fmt.Errorf("deletion vector: %w", err)
	}
	return bm, nil
}

func decodeNative(body []byte, order binary.ByteOrder) (*roaring64.Bitmap, error) {
	if len(body) < 4 {
		return nil, errors.New("deletion vector: too short")
	}
	n := order.Uint32(body)
	body = body[4:]
	if uint64(n) > uint64(len(body))/12 {
		return nil, fmt.Errorf("deletion vector: %d bitmaps cannot fit in %d bytes", n, len(body))
	}
	out := roaring64.New()
	for i := uint32(0); i < n; i++ {
		if len(body) < 4 {
			return nil, errors.New("deletion vector: truncated bitmap")
		}
		size := order.Uint32(body)
		body = body[4:]
		if uint64(size) > uint64(len(body)) {
			return nil, errors.New("deletion vector: truncated bitmap")
		}
		bm32 := roaring.New()
		if _, err := bm32.ReadFrom(bytes.NewReader(body[:size])); err != nil {
			return nil, fmt.Errorf("deletion vector: bitmap %d: %w", i, err)
		}
		body = body[size:]
		high := uint64(i) << 32
		it := bm32.Iterator()
		for it.HasNext() {
			out.Add(high | uint64(it.Next()))
		}
	}
	return out, nil
}

// ReadDeletionVector returns the row indexes that dv deletes from its data file: inline, or read
// from t's storage (a file relative to the table, or an absolute path inside it), with the
// checksum and cardinality checked as a scan checks them. Writers use it to merge a new
// deletion into a file's existing vector.
func ReadDeletionVector(ctx context.Context, t *table.Table, dv *txlog.DeletionVector) (*roaring64.Bitmap, error) {
	bm, where, err := loadDV(ctx, dv, func(ctx context.Context, key string, absolute bool, off, n int64) ([]byte, error) {
		if absolute {
			k, err := ObjectKey(t, key)
			if err != nil {
				return nil, err
			}
			key = k
		}
		var read atomic.Int64
		return readRange(ctx, t.Bucket(), key, off, n, &read)
	})
	if err != nil {
		return nil, fmt.Errorf("deletion vector %s: %w", where, err)
	}
	return bm, nil
}

// DecodeDeletionVector decodes a serialised RoaringBitmapArray (the bytes a deletion vector's
// sizeInBytes counts, without the file's size and checksum words): the portable format of the
// protocol's "Deletion Vector Format", or the older native one.
func DecodeDeletionVector(data []byte) (*roaring64.Bitmap, error) { return decodeBitmap(data) }
