package pqdecode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/apache/arrow-go/v18/arrow/bitutil"
)

// This file holds the decoders for Parquet's RLE / bit-packed hybrid encoding
// (https://parquet.apache.org/docs/file-format/data-pages/encodings/#run-length-encoding--bit-packing-hybrid-rle--3):
//
//	run         := rle-run | bit-packed-run
//	rle-run     := varint(count << 1)        value (ceil(bit-width/8) bytes, LE)
//	bit-packed  := varint(groups << 1 | 1)   groups*bit-width bytes, 8 values per group, LSB first

var errTruncated = errors.New("truncated RLE/bit-packed data")

// readRunHeader reads a run header, returning isBitPacked and the count
// (values for an RLE run, 8-value groups for a bit-packed run).
func readRunHeader(src []byte) (bitPacked bool, count uint64, n int, err error) {
	hdr, n := binary.Uvarint(src)
	if n <= 0 {
		return false, 0, 0, errTruncated
	}
	return hdr&1 == 1, hdr >> 1, n, nil
}

// decodeBits decodes n values of bit width 1 (definition levels of an optional
// flat column, RLE booleans) from src and writes them as bits into dst starting
// at bit offset off (Arrow LSB order). It returns the number of bytes of src it
// consumed.
func decodeBits(src []byte, n int, dst []byte, off int) (int, error) {
	start := len(src)
	i := 0
	for i < n {
		bitPacked, count, hn, err := readRunHeader(src)
		if err != nil {
			return 0, err
		}
		src = src[hn:]
		remain := n - i
		if bitPacked {
			// bit width 1: one byte per group of 8 values.
			take := remain
			if count < uint64(remain+7)/8 {
				take = int(count) * 8
			}
			if take == 0 {
				return 0, errors.New("empty bit-packed run")
			}
			need := (take + 7) / 8
			if need > len(src) {
				return 0, errTruncated
			}
			copyBits(src, 0, take, dst, off+i)
			adv := len(src)
			if count < uint64(adv) {
				adv = int(count)
			}
			src = src[adv:]
			i += take
		} else {
			if count == 0 {
				return 0, errors.New("empty RLE run")
			}
			if len(src) < 1 {
				return 0, errTruncated
			}
			v := src[0]
			src = src[1:]
			if v > 1 {
				return 0, fmt.Errorf("RLE value %d exceeds bit width 1", v)
			}
			take := remain
			if count < uint64(remain) {
				take = int(count)
			}
			bitutil.SetBitsTo(dst, int64(off+i), int64(take), v == 1)
			i += take
		}
	}
	return start - len(src), nil
}

// decodeBitPackedLegacyBits decodes n values of the deprecated BIT_PACKED
// level encoding with bit width 1. The format spec packs those from the most
// significant bit down, unlike the hybrid encoding.
func decodeBitPackedLegacyBits(src []byte, n int, dst []byte, off int) (int, error) {
	nbytes := (n + 7) / 8
	if nbytes > len(src) {
		return 0, errTruncated
	}
	for j := 0; j < n; j++ {
		bitutil.SetBitTo(dst, off+j, (src[j>>3]>>(7-uint(j&7)))&1 == 1)
	}
	return nbytes, nil
}

// decodeIndices decodes len(dst) dictionary indices of bit width bw from src
// (the part of the page after the bit-width byte) and checks that each one is
// below dictLen.
func decodeIndices(src []byte, bw int, dst []uint32, dictLen int) error {
	maxIdx, err := decodeHybrid(src, bw, dst)
	if err != nil {
		return err
	}
	if len(dst) > 0 && uint64(maxIdx) >= uint64(dictLen) {
		return fmt.Errorf("dictionary index %d out of range (dictionary has %d entries)", maxIdx, dictLen)
	}
	return nil
}

// decodeHybrid decodes len(dst) values of bit width bw (0..32) from src and
// returns the largest.
func decodeHybrid(src []byte, bw int, dst []uint32) (uint32, error) {
	if bw < 0 || bw > 32 {
		return 0, fmt.Errorf("invalid bit width %d", bw)
	}
	n := len(dst)
	i := 0
	var maxIdx uint32
	for i < n {
		bitPacked, count, hn, err := readRunHeader(src)
		if err != nil {
			return 0, err
		}
		src = src[hn:]
		remain := n - i
		if bitPacked {
			take := remain
			if count < uint64(remain+7)/8 {
				take = int(count) * 8
			}
			if take == 0 {
				return 0, errors.New("empty bit-packed run")
			}
			need := (take*bw + 7) / 8
			if need > len(src) {
				return 0, errTruncated
			}
			m := unpack(src, bw, dst[i:i+take])
			if m > maxIdx {
				maxIdx = m
			}
			// A run's full size is count*bw bytes; the final run of a page may be
			// cut short by some writers, so only what was used must be present.
			adv := 0
			if bw > 0 {
				adv = len(src)
				if count <= uint64(len(src)) {
					if full := int(count) * bw; full < adv {
						adv = full
					}
				}
			}
			src = src[adv:]
			i += take
		} else {
			if count == 0 {
				return 0, errors.New("empty RLE run")
			}
			vb := (bw + 7) / 8
			if len(src) < vb {
				return 0, errTruncated
			}
			var v uint32
			for k := vb - 1; k >= 0; k-- {
				v = v<<8 | uint32(src[k])
			}
			src = src[vb:]
			if bw < 32 && v>>uint(bw) != 0 {
				return 0, fmt.Errorf("RLE value %d exceeds bit width %d", v, bw)
			}
			take := remain
			if count < uint64(remain) {
				take = int(count)
			}
			if v > maxIdx {
				maxIdx = v
			}
			fill := dst[i : i+take]
			if v == 0 {
				clear(fill)
			} else {
				for k := range fill {
					fill[k] = v
				}
			}
			i += take
		}
	}
	return maxIdx, nil
}

// unpack extracts len(dst) values of bit width bw (0..32), LSB first, from
// src, which must hold at least ceil(len(dst)*bw/8) bytes. It returns the
// largest value.
func unpack(src []byte, bw int, dst []uint32) uint32 {
	if bw == 0 {
		clear(dst)
		return 0
	}
	mask := uint64(1)<<uint(bw) - 1
	var m uint32
	bitpos := 0
	j := 0
	if bw <= 8 {
		// Groups of 8 values (bw bytes) from one 8-byte load each.
		b := uint(bw)
		for ; j+8 <= len(dst) && (j>>3)*bw+8 <= len(src); j += 8 {
			w := binary.LittleEndian.Uint64(src[(j>>3)*bw:])
			d := dst[j : j+8 : j+8]
			d[0] = uint32(w & mask)
			d[1] = uint32(w >> b & mask)
			d[2] = uint32(w >> (2 * b) & mask)
			d[3] = uint32(w >> (3 * b) & mask)
			d[4] = uint32(w >> (4 * b) & mask)
			d[5] = uint32(w >> (5 * b) & mask)
			d[6] = uint32(w >> (6 * b) & mask)
			d[7] = uint32(w >> (7 * b) & mask)
			m = max(m, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7])
		}
		bitpos = j * bw
	}
	// Fast path: whole 8-byte loads while they stay inside src.
	for ; j < len(dst); j++ {
		b := bitpos >> 3
		if b+8 > len(src) {
			break
		}
		v := uint32((binary.LittleEndian.Uint64(src[b:]) >> uint(bitpos&7)) & mask)
		dst[j] = v
		m = max(m, v)
		bitpos += bw
	}
	for ; j < len(dst); j++ {
		b := bitpos >> 3
		var w uint64
		for k := min(len(src)-b, 8) - 1; k >= 0; k-- {
			w = w<<8 | uint64(src[b+k])
		}
		v := uint32((w >> uint(bitpos&7)) & mask)
		dst[j] = v
		m = max(m, v)
		bitpos += bw
	}
	return m
}

// nextBit returns the first index in [i, n) whose bit in bm equals set, or n.
// bm must have at least 8 readable bytes past byte n/8 (callers pad it).
func nextBit(bm []byte, i, n int, set bool) int {
	for i < n {
		sh := uint(i & 7)
		w := binary.LittleEndian.Uint64(bm[i>>3:]) >> sh
		if !set {
			w = ^w
		}
		avail := 64 - int(sh)
		if w != 0 {
			if tz := bits.TrailingZeros64(w); tz < avail {
				return min(i+tz, n)
			}
		}
		i += avail
	}
	return n
}

// loadBits returns the bits of b starting at bit off in the low bits of the
// result; at least 57 of them are valid (bits beyond len(b) read as zero).
func loadBits(b []byte, off int) uint64 {
	i := off >> 3
	var w uint64
	if i+8 <= len(b) {
		w = binary.LittleEndian.Uint64(b[i:])
	} else {
		for k := min(len(b)-i, 8) - 1; k >= 0; k-- {
			w = w<<8 | uint64(b[i+k])
		}
	}
	return w >> uint(off&7)
}

// copyBits copies n bits from src at bit sOff to dst at bit dOff (LSB order),
// leaving the other bits of dst alone. Unlike bitutil.CopyBitmap it does not
// allocate.
func copyBits(src []byte, sOff, n int, dst []byte, dOff int) {
	for n > 0 {
		take := min(n, 56)
		sh := uint(dOff & 7)
		mask := (uint64(1)<<uint(take) - 1) << sh
		v := (loadBits(src, sOff) << sh) & mask
		i := dOff >> 3
		if i+8 <= len(dst) {
			w := binary.LittleEndian.Uint64(dst[i:])
			binary.LittleEndian.PutUint64(dst[i:], w&^mask|v)
		} else {
			nb := (int(sh) + take + 7) >> 3
			for k := 0; k < nb; k++ {
				m := byte(mask >> (8 * k))
				dst[i+k] = dst[i+k]&^m | byte(v>>(8*k))
			}
		}
		sOff += take
		dOff += take
		n -= take
	}
}

// hybridZero reports whether the first n values of bit width bw in src are
// all zero, without expanding them. It returns false (and no error) for
// anything it is not sure about; the caller then decodes the values, which
// reports malformed data.
func hybridZero(src []byte, bw, n int) bool {
	for i := 0; i < n; {
		bitPacked, count, hn, err := readRunHeader(src)
		if err != nil || count == 0 {
			return false
		}
		src = src[hn:]
		if bitPacked {
			take := min(uint64(n-i), count*8)
			nb := (int(take)*bw + 7) / 8
			if nb > len(src) {
				return false
			}
			for _, b := range src[:nb] {
				if b != 0 {
					return false
				}
			}
			// bits of a partial last byte beyond take belong to no value
			adv := len(src)
			if count <= uint64(len(src)) {
				adv = min(adv, int(count)*bw)
			}
			src = src[adv:]
			i += int(take)
		} else {
			vb := (bw + 7) / 8
			if len(src) < vb {
				return false
			}
			for _, b := range src[:vb] {
				if b != 0 {
					return false
				}
			}
			src = src[vb:]
			i += int(min(uint64(n-i), count))
		}
	}
	return true
}
