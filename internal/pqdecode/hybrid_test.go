package pqdecode

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/bitutil"
)

// encodeHybrid is a reference encoder for the RLE/bit-packed hybrid: it
// alternates RLE runs and bit-packed runs at random.
func encodeHybrid(rng *rand.Rand, vals []uint32, bw int) []byte {
	var out []byte
	i := 0
	for i < len(vals) {
		if rng.IntN(2) == 0 {
			// RLE run of the repeated value at i
			j := i
			for j < len(vals) && vals[j] == vals[i] {
				j++
			}
			out = binary.AppendUvarint(out, uint64(j-i)<<1)
			for k := 0; k < (bw+7)/8; k++ {
				out = append(out, byte(vals[i]>>(8*k)))
			}
			i = j
			continue
		}
		groups := 1 + rng.IntN(4)
		out = binary.AppendUvarint(out, uint64(groups)<<1|1)
		packed := make([]byte, groups*bw)
		for k := 0; k < groups*8; k++ {
			var v uint64
			if i+k < len(vals) {
				v = uint64(vals[i+k])
			}
			for b := 0; b < bw; b++ {
				if v>>b&1 == 1 {
					bit := k*bw + b
					packed[bit/8] |= 1 << (bit % 8)
				}
			}
		}
		out = append(out, packed...)
		i += groups * 8
	}
	return out
}

func TestDecodeIndices(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for bw := 0; bw <= 32; bw++ {
		for it := 0; it < 20; it++ {
			n := rng.IntN(300)
			vals := make([]uint32, n)
			limit := uint64(1) << bw
			for i := range vals {
				if i > 0 && rng.IntN(3) == 0 {
					vals[i] = vals[i-1]
				} else {
					vals[i] = uint32(rng.Uint64N(limit))
				}
			}
			enc := encodeHybrid(rng, vals, bw)
			got := make([]uint32, n)
			if err := decodeIndices(enc, bw, got, int(limit)); err != nil {
				t.Fatalf("bw %d: %v", bw, err)
			}
			for i := range vals {
				if got[i] != vals[i] {
					t.Fatalf("bw %d n %d: value %d = %d, want %d", bw, n, i, got[i], vals[i])
				}
			}
			// Every index must be checked against the dictionary size.
			var maxV uint32
			for _, v := range vals {
				maxV = max(maxV, v)
			}
			if n > 0 {
				if err := decodeIndices(enc, bw, got, int(maxV)); err == nil {
					t.Fatalf("bw %d: index %d accepted with dictionary of %d", bw, maxV, maxV)
				}
			}
			// Truncation must be an error, not a panic.
			if n > 0 && len(enc) > 0 {
				_ = decodeIndices(enc[:rng.IntN(len(enc))], bw, got, 1<<31)
			}
		}
	}
}

func TestDecodeBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for it := 0; it < 200; it++ {
		n := rng.IntN(500)
		vals := make([]uint32, n)
		for i := range vals {
			if i > 0 && rng.IntN(4) != 0 {
				vals[i] = vals[i-1]
			} else {
				vals[i] = uint32(rng.IntN(2))
			}
		}
		enc := encodeHybrid(rng, vals, 1)
		off := rng.IntN(20)
		dst := make([]byte, bitutil.BytesForBits(int64(n+off))+8)
		used, err := decodeBits(enc, n, dst, off)
		if err != nil {
			t.Fatal(err)
		}
		if used > len(enc) {
			t.Fatalf("used %d of %d bytes", used, len(enc))
		}
		for i, v := range vals {
			if bitutil.BitIsSet(dst, off+i) != (v == 1) {
				t.Fatalf("it %d: bit %d wrong", it, i)
			}
		}
		// nextBit agrees with a naive scan.
		for i := 0; i < n; i++ {
			for _, set := range []bool{true, false} {
				want := n
				for j := i; j < n; j++ {
					if (vals[j] == 1) == set {
						want = j
						break
					}
				}
				if got := nextBit(dst, off+i, off+n, set) - off; got != want {
					t.Fatalf("nextBit(%d, %v) = %d, want %d", i, set, got, want)
				}
			}
		}
	}
	// RLE value out of range for bit width 1.
	if _, err := decodeBits([]byte{4 << 1, 2}, 4, make([]byte, 16), 0); err == nil {
		t.Error("RLE level 2 accepted for max level 1")
	}
}

func TestDecodeBitPackedLegacy(t *testing.T) {
	// Spec: BIT_PACKED packs from the most significant bit.
	src := []byte{0b1010_0000, 0b1000_0000}
	dst := make([]byte, 16)
	used, err := decodeBitPackedLegacyBits(src, 9, dst, 3)
	if err != nil || used != 2 {
		t.Fatalf("used %d err %v", used, err)
	}
	want := []bool{true, false, true, false, false, false, false, false, true}
	for i, w := range want {
		if bitutil.BitIsSet(dst, 3+i) != w {
			t.Errorf("bit %d = %v, want %v", i, !w, w)
		}
	}
	if _, err := decodeBitPackedLegacyBits(src, 17, dst, 0); err == nil {
		t.Error("truncated BIT_PACKED levels accepted")
	}
}

func TestCopyBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for it := 0; it < 2000; it++ {
		src := make([]byte, 1+rng.IntN(40))
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		dst := make([]byte, 1+rng.IntN(40))
		for i := range dst {
			dst[i] = byte(rng.Uint32())
		}
		sOff := rng.IntN(len(src) * 8)
		dOff := rng.IntN(len(dst) * 8)
		n := rng.IntN(min(len(src)*8-sOff, len(dst)*8-dOff) + 1)
		want := append([]byte(nil), dst...)
		for j := 0; j < n; j++ {
			bitutil.SetBitTo(want, dOff+j, bitutil.BitIsSet(src, sOff+j))
		}
		copyBits(src, sOff, n, dst, dOff)
		if string(dst) != string(want) {
			t.Fatalf("copyBits(sOff %d, n %d, dOff %d): got %x want %x", sOff, n, dOff, dst, want)
		}
	}
}

// TestHybridZero checks the all-zero scan used for repetition levels against
// the decoder.
func TestHybridZero(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for bw := 1; bw <= 3; bw++ {
		for it := 0; it < 300; it++ {
			n := rng.IntN(200)
			vals := make([]uint32, n)
			if rng.IntN(2) == 0 && n > 0 {
				vals[rng.IntN(n)] = uint32(1 + rng.IntN(1<<bw-1))
			}
			enc := encodeHybrid(rng, vals, bw)
			want := true
			for _, v := range vals {
				want = want && v == 0
			}
			if got := hybridZero(enc, bw, n); got != want {
				t.Fatalf("bw %d n %d: hybridZero %v, want %v (vals %v)", bw, n, got, want, vals)
			}
			if want && n > 0 {
				// a truncated stream is never reported all zero
				if hybridZero(enc[:len(enc)/2], bw, n) && len(enc)/2 < len(enc) {
					dst := make([]uint32, n)
					if _, err := decodeHybrid(enc[:len(enc)/2], bw, dst); err != nil {
						t.Fatalf("bw %d n %d: truncated stream reported all zero but does not decode: %v", bw, n, err)
					}
				}
			}
		}
	}
}
