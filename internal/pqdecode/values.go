package pqdecode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// forRuns calls fn for each maximal run [s, e) (absolute row numbers) of
// non-null (set) or null rows among the n rows of the current page.
func (d *decoder) forRuns(n int, fn func(s, e int, set bool)) {
	end := d.pos + n
	i := d.pos
	for i < end {
		s := nextBit(d.valid, i, end, true)
		if s > i {
			fn(i, s, false)
		}
		if s >= end {
			break
		}
		e := nextBit(d.valid, s, end, false)
		fn(s, e, true)
		i = e
	}
}

// dictionaryPage decodes a (PLAIN encoded) dictionary page.
func (d *decoder) dictionaryPage(pg *file.DictionaryPage) error {
	if d.hasDict {
		return errors.New("column chunk has more than one dictionary page")
	}
	if enc := parquet.Encoding(pg.Encoding()); enc != parquet.Encodings.Plain && enc != parquet.Encodings.PlainDict {
		return fmt.Errorf("unsupported dictionary page encoding %s", enc)
	}
	n := int(pg.NumValues())
	buf := pg.Data()
	if n < 0 {
		return fmt.Errorf("dictionary page with %d values", n)
	}
	switch d.kind {
	case kindBytes:
		if int64(n)*4 > int64(len(buf)) {
			return fmt.Errorf("dictionary page: %d values cannot fit in %d bytes", n, len(buf))
		}
		offs := make([]int32, n+1)
		data := make([]byte, 0, len(buf)-4*n+copySlack)
		p := 0
		for i := 0; i < n; i++ {
			if len(buf)-p < 4 {
				return fmt.Errorf("dictionary page: value %d: truncated length", i)
			}
			l := uint64(binary.LittleEndian.Uint32(buf[p:]))
			p += 4
			if l > uint64(len(buf)-p) {
				return fmt.Errorf("dictionary page: value %d: length %d exceeds page end", i, l)
			}
			data = append(data, buf[p:p+int(l)]...)
			p += int(l)
			offs[i+1] = int32(len(data))
		}
		// pad so copyValue can always move copySlack bytes from an entry's start
		data = append(data, make([]byte, copySlack)...)
		d.dictOffs, d.dictData = offs, data
	case kindFixed4:
		if int64(n)*4 > int64(len(buf)) {
			return fmt.Errorf("dictionary page: %d values cannot fit in %d bytes", n, len(buf))
		}
		d.dict4 = make([]uint32, n)
		copy(arrow.Uint32Traits.CastToBytes(d.dict4), buf)
	case kindFixed8:
		if int64(n)*8 > int64(len(buf)) {
			return fmt.Errorf("dictionary page: %d values cannot fit in %d bytes", n, len(buf))
		}
		d.dict8 = make([]uint64, n)
		copy(arrow.Uint64Traits.CastToBytes(d.dict8), buf)
	default:
		return errors.New("dictionary page for a boolean column")
	}
	d.hasDict, d.dictLen = true, n
	return nil
}

// plain decodes a PLAIN value section.
func (d *decoder) plain(buf []byte, n, nonNull int) error {
	switch d.kind {
	case kindFixed4, kindFixed8:
		w := d.width()
		if int64(nonNull)*int64(w) > int64(len(buf)) {
			return fmt.Errorf("page holds %d value bytes, %d values need %d", len(buf), nonNull, nonNull*w)
		}
		dst := d.vals[d.pos*w : (d.pos+n)*w]
		if nonNull == n {
			copy(dst, buf)
			return nil
		}
		k := 0
		base := d.pos
		d.forRuns(n, func(s, e int, set bool) {
			seg := dst[(s-base)*w : (e-base)*w]
			if set {
				k += copy(seg, buf[k:])
			} else {
				clear(seg)
			}
		})
		return nil
	case kindBool:
		if bytesForBits(nonNull) > int64(len(buf)) {
			return fmt.Errorf("page holds %d value bytes, %d booleans need %d", len(buf), nonNull, bytesForBits(nonNull))
		}
		d.scatterBits(buf, n, nonNull)
		return nil
	default:
		return d.plainBytes(buf, n, nonNull)
	}
}

// scatterBits copies nonNull bits from src to the non-null rows of the page.
// Null rows keep the zero bits the values bitmap was cleared to.
func (d *decoder) scatterBits(src []byte, n, nonNull int) {
	if nonNull == n {
		copyBits(src, 0, n, d.vals, d.pos)
		return
	}
	k := 0
	d.forRuns(n, func(s, e int, set bool) {
		if set {
			copyBits(src, k, e-s, d.vals, s)
			k += e - s
		}
	})
}

// reserveData makes room for extra more bytes of string data. It grows the
// buffer towards the projected size of the whole chunk (bytes per row so far
// times rows), and at least by half, so a chunk is copied only a few times.
func (d *decoder) reserveData(extra int64, pageRows int) error {
	need := int64(d.dataLen) + extra
	if need > math.MaxInt32 {
		return fmt.Errorf("%w: byte array data exceeds %d bytes (int32 offsets overflow)", ErrTooLarge, math.MaxInt32)
	}
	need += copySlack
	c := int64(len(d.dataBuf))
	if need <= c {
		return nil
	}
	newCap := max(need, c+c/2)
	if done := int64(d.pos + pageRows); done > 0 {
		proj := need * int64(d.numRows) / done
		newCap = max(newCap, proj+proj/16)
	}
	newCap = min(newCap, math.MaxInt32+copySlack)
	d.data.Reserve(int(newCap))
	d.dataBuf = d.data.Buf()
	return nil
}

// plainBytes decodes PLAIN byte arrays: a 4-byte little-endian length then the
// bytes, per non-null value.
func (d *decoder) plainBytes(buf []byte, n, nonNull int) error {
	if int64(nonNull)*4 > int64(len(buf)) {
		return fmt.Errorf("page holds %d value bytes, cannot fit %d byte arrays", len(buf), nonNull)
	}
	if err := d.reserveData(int64(len(buf)-4*nonNull), n); err != nil {
		return err
	}
	var (
		p   int
		cur = d.dataLen
		err error
		// A well-formed page holds at most this many value bytes; anything more
		// means corrupt lengths (and would overrun the reservation).
		limit = d.dataLen + len(buf) - 4*nonNull
	)
	if nonNull == n {
		p, cur, err = plainRun(buf, p, d.dataBuf, cur, limit, d.offsets[d.pos+1:d.pos+n+1])
	} else {
		it := runIter{bm: d.valid, i: d.pos, end: d.pos + n}
		for err == nil {
			s, e, set, ok := it.next()
			if !ok {
				break
			}
			out := d.offsets[s+1 : e+1]
			if set {
				p, cur, err = plainRun(buf, p, d.dataBuf, cur, limit, out)
			} else {
				fillOffsets(out, cur)
			}
		}
	}
	d.dataLen = cur
	if err != nil {
		return fmt.Errorf("value %d: %w", p, err)
	}
	return nil
}

// plainRun decodes len(out) PLAIN byte arrays from buf[p:] into data[cur:],
// storing the end offset of each in out. Values may not extend data past
// limit; data must have limit+copySlack bytes.
func plainRun(buf []byte, p int, data []byte, cur, limit int, out []int32) (int, int, error) {
	for j := range out {
		if len(buf)-p < 4 {
			return p, cur, errors.New("truncated byte array length")
		}
		l := int(binary.LittleEndian.Uint32(buf[p:]))
		p += 4
		if l < 0 || l > len(buf)-p {
			return p, cur, fmt.Errorf("byte array length %d exceeds page end", uint32(l))
		}
		if l > limit-cur {
			return p, cur, errors.New("byte array lengths exceed the page size")
		}
		if l <= copySlack && p+copySlack <= len(buf) {
			// short value: one fixed 16-byte move (data has copySlack bytes of slack)
			*(*[copySlack]byte)(data[cur:]) = [copySlack]byte(buf[p:])
			cur += l
		} else {
			cur += copy(data[cur:], buf[p:p+l])
		}
		p += l
		out[j] = int32(cur)
	}
	return p, cur, nil
}

func fillOffsets(out []int32, cur int) {
	for j := range out {
		out[j] = int32(cur)
	}
}

// runIter walks the maximal runs of set (non-null) and unset bits of a
// validity bitmap in [i, end).
type runIter struct {
	bm     []byte
	i, end int
}

func (r *runIter) next() (s, e int, set, ok bool) {
	if r.i >= r.end {
		return 0, 0, false, false
	}
	s = r.i
	set = r.bm[s>>3]>>(uint(s)&7)&1 == 1
	e = nextBit(r.bm, s, r.end, !set)
	r.i = e
	return s, e, set, true
}

// dict decodes a dictionary-index value section: one byte of bit width, then
// RLE/bit-packed hybrid indices.
func (d *decoder) dict(buf []byte, n, nonNull int) error {
	if !d.hasDict {
		return errors.New("dictionary-encoded page without a dictionary page")
	}
	if d.kind == kindBool {
		return errors.New("dictionary-encoded boolean page")
	}
	var idx []uint32
	if nonNull > 0 {
		if len(buf) < 1 {
			return errors.New("missing dictionary index bit width")
		}
		if cap(d.idx) < nonNull {
			d.idx = make([]uint32, nonNull)
		}
		idx = d.idx[:nonNull]
		if err := decodeIndices(buf[1:], int(buf[0]), idx, d.dictLen); err != nil {
			return err
		}
	}
	switch d.kind {
	case kindFixed4:
		gather(arrow.Uint32Traits.CastFromBytes(d.vals), d.dict4, idx, d, n, nonNull)
	case kindFixed8:
		gather(arrow.Uint64Traits.CastFromBytes(d.vals), d.dict8, idx, d, n, nonNull)
	default:
		return d.dictBytes(idx, n, nonNull)
	}
	return nil
}

func gather[T uint32 | uint64](dst, dict []T, idx []uint32, d *decoder, n, nonNull int) {
	if nonNull == n {
		out := dst[d.pos : d.pos+n]
		for j, ix := range idx {
			out[j] = dict[ix]
		}
		return
	}
	k := 0
	d.forRuns(n, func(s, e int, set bool) {
		out := dst[s:e]
		if !set {
			clear(out)
			return
		}
		for j, ix := range idx[k : k+len(out)] {
			out[j] = dict[ix]
		}
		k += len(out)
	})
}

func (d *decoder) dictBytes(idx []uint32, n, nonNull int) error {
	dOffs, dData := d.dictOffs, d.dictData
	var total int64
	for _, ix := range idx {
		total += int64(dOffs[ix+1] - dOffs[ix])
	}
	if err := d.reserveData(total, n); err != nil {
		return err
	}
	cur := d.dataLen
	if nonNull == n {
		cur = dictRun(idx, dOffs, dData, d.dataBuf, cur, d.offsets[d.pos+1:d.pos+n+1])
	} else {
		it := runIter{bm: d.valid, i: d.pos, end: d.pos + n}
		k := 0
		for {
			s, e, set, ok := it.next()
			if !ok {
				break
			}
			out := d.offsets[s+1 : e+1]
			if set {
				cur = dictRun(idx[k:k+len(out)], dOffs, dData, d.dataBuf, cur, out)
				k += len(out)
			} else {
				fillOffsets(out, cur)
			}
		}
	}
	d.dataLen = cur
	return nil
}

// dictRun copies the dictionary values idx into data[cur:], storing the end
// offset of each in out (len(out) == len(idx)).
func dictRun(idx []uint32, dOffs []int32, dData, data []byte, cur int, out []int32) int {
	out = out[:len(idx)]
	for j, ix := range idx {
		cur += copyValue(data, cur, dData, dOffs[ix], dOffs[ix+1])
		out[j] = int32(cur)
	}
	return cur
}

// rleBool decodes RLE-encoded booleans: a 4-byte length, then the hybrid
// encoding with bit width 1.
func (d *decoder) rleBool(buf []byte, n, nonNull int) error {
	if nonNull == 0 {
		return nil
	}
	if len(buf) < 4 {
		return errors.New("truncated RLE boolean length")
	}
	ln := uint64(binary.LittleEndian.Uint32(buf))
	if ln > uint64(len(buf)-4) {
		return fmt.Errorf("RLE boolean length %d exceeds page end", ln)
	}
	sz := int(bytesForBits(nonNull))
	if cap(d.boolVals) < sz {
		d.boolVals = make([]byte, sz)
	}
	scratch := d.boolVals[:sz]
	if _, err := decodeBits(buf[4:4+ln], nonNull, scratch, 0); err != nil {
		return err
	}
	d.scatterBits(scratch, n, nonNull)
	return nil
}

// copySlack is the slack kept after the string data and the dictionary
// values so that short values can be moved with one fixed-size copy.
const copySlack = 16

// copyValue copies src[s:e] to dst[cur:] and returns e-s. dst must have
// copySlack bytes of room after cur+e-s and src copySlack bytes after s.
func copyValue(dst []byte, cur int, src []byte, s, e int32) int {
	l := int(e - s)
	if l <= copySlack {
		*(*[copySlack]byte)(dst[cur:]) = [copySlack]byte(src[s:])
		return l
	}
	return copy(dst[cur:], src[s:e])
}
