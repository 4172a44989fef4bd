package checkpoint

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/lakehouse/lake/internal/delta"
)

// ---- leaf cursors ------------------------------------------------------------------------------

const pqLevelBatch = 4096

// pqMaxRowsPerByte bounds the rows a file of a given size may claim.
const pqMaxRowsPerByte = 16

// pqLeaf reads the levels and values of one leaf column chunk, one level at a time.
type pqLeaf struct {
	path           string
	maxDef, maxRep int16
	typ            parquet.Type
	rdr            file.ColumnChunkReader
	ba             *file.ByteArrayColumnChunkReader
	i64            *file.Int64ColumnChunkReader
	i32            *file.Int32ColumnChunkReader
	bo             *file.BooleanColumnChunkReader

	defs, reps []int16
	bav        []parquet.ByteArray
	i64v       []int64
	i32v       []int32
	bov        []bool
	n, pos     int // levels buffered, next level
	nv, vpos   int // values buffered, next value

	presence bool // advanced by the action, not by its field
	// The current level: its definition and repetition levels, and its value's index (-1 when
	// the level has no value).
	def, rep int16
	vi       int
}

func (d *pqDecoder) openLeaf(rgr *file.RowGroupReader, idx int, path string) (*pqLeaf, error) {
	cr, err := rgr.Column(idx)
	if err != nil {
		return nil, fmt.Errorf("column %s: %w", path, err)
	}
	descr := cr.Descriptor()
	l := &pqLeaf{path: path, maxDef: descr.MaxDefinitionLevel(), maxRep: descr.MaxRepetitionLevel(),
		typ: cr.Type(), rdr: cr, vi: -1}
	if l.maxDef > 0 {
		l.defs = make([]int16, pqLevelBatch)
	}
	if l.maxRep > 0 {
		l.reps = make([]int16, pqLevelBatch)
	}
	switch r := cr.(type) {
	case *file.ByteArrayColumnChunkReader:
		l.ba, l.bav = r, make([]parquet.ByteArray, pqLevelBatch)
	case *file.Int64ColumnChunkReader:
		l.i64, l.i64v = r, make([]int64, pqLevelBatch)
	case *file.Int32ColumnChunkReader:
		l.i32, l.i32v = r, make([]int32, pqLevelBatch)
	case *file.BooleanColumnChunkReader:
		l.bo, l.bov = r, make([]bool, pqLevelBatch)
	default:
		return nil, fmt.Errorf("column %s: unexpected physical type %s", path, cr.Type())
	}
	return l, nil
}

// fill reads the next levels (from one page; byte arrays alias the page until the next fill).
func (l *pqLeaf) fill() error {
	for stalls := 0; ; stalls++ {
		if stalls > 2 {
			return fmt.Errorf("column %s: corrupt page (no values decoded)", l.path)
		}
		var (
			total int64
			nv    int
			err   error
		)
		switch {
		case l.ba != nil:
			total, nv, err = l.ba.ReadBatchInPage(pqLevelBatch, l.bav, l.defs, l.reps)
		case l.i64 != nil:
			total, nv, err = l.i64.ReadBatchInPage(pqLevelBatch, l.i64v, l.defs, l.reps)
		case l.i32 != nil:
			total, nv, err = l.i32.ReadBatchInPage(pqLevelBatch, l.i32v, l.defs, l.reps)
		default:
			total, nv, err = l.bo.ReadBatchInPage(pqLevelBatch, l.bov, l.defs, l.reps)
		}
		if err != nil {
			return fmt.Errorf("column %s: %w", l.path, err)
		}
		if total < 0 || total > pqLevelBatch || nv < 0 || nv > int(total) {
			return fmt.Errorf("column %s: corrupt page", l.path)
		}
		if total > 0 {
			l.n, l.pos, l.nv, l.vpos = int(total), 0, nv, 0
			return nil
		}
		if err := l.rdr.Err(); err != nil {
			return fmt.Errorf("column %s: %w", l.path, err)
		}
		if !l.rdr.HasNext() {
			if err := l.rdr.Err(); err != nil {
				return fmt.Errorf("column %s: %w", l.path, err)
			}
			return io.EOF
		}
	}
}

// next moves to the next level.
func (l *pqLeaf) next() error {
	if l.pos >= l.n {
		if err := l.fill(); err != nil {
			if err == io.EOF {
				return fmt.Errorf("column %s: fewer values than rows", l.path)
			}
			return err
		}
	}
	l.def, l.rep = l.maxDef, 0
	if l.maxDef > 0 {
		l.def = l.defs[l.pos]
	}
	if l.maxRep > 0 {
		l.rep = l.reps[l.pos]
	}
	l.pos++
	l.vi = -1
	if l.def == l.maxDef {
		if l.vpos >= l.nv {
			return fmt.Errorf("column %s: fewer values than levels", l.path)
		}
		l.vi = l.vpos
		l.vpos++
	}
	return nil
}

// advance moves a field's leaf to the current row (the presence leaf is already there).
func (l *pqLeaf) advance() error {
	if l.presence {
		return nil
	}
	return l.next()
}

// nextInRow reports whether the next level continues the current row (repeated leaves).
func (l *pqLeaf) nextInRow() (bool, error) {
	if l.pos >= l.n {
		if err := l.fill(); err != nil {
			if err == io.EOF {
				return false, nil
			}
			return false, err
		}
	}
	return l.reps != nil && l.reps[l.pos] != 0, nil
}

// skipNullRows skips k rows in which the action (definition level below actionDef) is absent:
// one level each, without values.
func (l *pqLeaf) skipNullRows(k int, actionDef int16) error {
	for k > 0 {
		if l.pos >= l.n {
			if err := l.fill(); err != nil {
				if err == io.EOF {
					return fmt.Errorf("column %s: fewer values than rows", l.path)
				}
				return err
			}
		}
		m := min(k, l.n-l.pos)
		if l.maxDef > 0 {
			for _, v := range l.defs[l.pos : l.pos+m] {
				if v >= actionDef {
					return fmt.Errorf("column %s: value in a row without its action", l.path)
				}
			}
		} else if actionDef > 0 {
			return fmt.Errorf("column %s: value in a row without its action", l.path)
		}
		l.pos += m
		k -= m
	}
	return nil
}

func (l *pqLeaf) has() bool { return l.vi >= 0 }

// bytes is the current value; it aliases the page and is valid until the next level is read.
func (l *pqLeaf) bytes() []byte {
	if l.vi < 0 || l.ba == nil {
		return nil
	}
	return l.bav[l.vi]
}

func (l *pqLeaf) int() int64 {
	switch {
	case l.vi < 0:
		return 0
	case l.i64 != nil:
		return l.i64v[l.vi]
	case l.i32 != nil:
		return int64(l.i32v[l.vi])
	}
	return 0
}

func (l *pqLeaf) bool() bool { return l.vi >= 0 && l.bo != nil && l.bov[l.vi] }

// ---- bound fields --------------------------------------------------------------------------------

type pqField struct {
	plan   *pqFieldPlan
	leaf   *pqLeaf
	leaf2  *pqLeaf
	sub    []*pqField
	leaves []*pqLeaf // every leaf of the field, for skipping
}

func (d *pqDecoder) bindField(rgr *file.RowGroupReader, fp *pqFieldPlan) (*pqField, error) {
	if fp == nil {
		return nil, nil
	}
	f := &pqField{plan: fp}
	var err error
	if fp.leaf >= 0 {
		if f.leaf, err = d.openLeaf(rgr, fp.leaf, fp.path); err != nil {
			return nil, err
		}
		f.leaves = append(f.leaves, f.leaf)
	}
	if fp.leaf2 >= 0 {
		if f.leaf2, err = d.openLeaf(rgr, fp.leaf2, fp.path+".value"); err != nil {
			return nil, err
		}
		f.leaves = append(f.leaves, f.leaf2)
	}
	for _, sp := range fp.sub {
		sf, err := d.bindField(rgr, sp)
		if err != nil {
			return nil, err
		}
		f.sub = append(f.sub, sf)
		if sf != nil {
			f.leaves = append(f.leaves, sf.leaves...)
		}
	}
	return f, nil
}

// The field readers below record the first error of a row in d.ferr and then read nothing.

// prim reads a primitive field of the current row; false when null, absent or after an error.
func (d *pqDecoder) prim(f *pqField) bool {
	if f == nil || d.ferr != nil {
		return false
	}
	if err := f.leaf.advance(); err != nil {
		d.ferr = err
		return false
	}
	return f.leaf.has()
}

func (d *pqDecoder) str(f *pqField) string {
	if !d.prim(f) {
		return ""
	}
	return d.arena.str(f.leaf.bytes())
}

// ownStr is for the values of rare actions, which should not pin an arena chunk.
func (d *pqDecoder) ownStr(f *pqField) string {
	if !d.prim(f) {
		return ""
	}
	return string(f.leaf.bytes())
}

func (d *pqDecoder) optStr(f *pqField) *string {
	if !d.prim(f) {
		return nil
	}
	s := string(f.leaf.bytes())
	return &s
}

func (d *pqDecoder) long(f *pqField) int64 {
	if !d.prim(f) {
		return 0
	}
	return f.leaf.int()
}

func (d *pqDecoder) boolean(f *pqField) bool {
	if !d.prim(f) {
		return false
	}
	return f.leaf.bool()
}

func (d *pqDecoder) optBool(f *pqField) *bool {
	if !d.prim(f) {
		return nil
	}
	v := f.leaf.bool()
	return &v
}

// optLong allocates from a slab (for adds and removes).
func (d *pqDecoder) optLong(f *pqField) *int64 {
	if !d.prim(f) {
		return nil
	}
	p := d.ints.alloc()
	*p = f.leaf.int()
	return p
}

func (d *pqDecoder) ownOptLong(f *pqField) *int64 {
	if !d.prim(f) {
		return nil
	}
	v := f.leaf.int()
	return &v
}

// entries reads a map or list field of the current row, calling fn for each entry (v is nil for
// lists; vnull tells a null map value). It returns whether the field is non-null.
func (f *pqField) entries(fn func(k, v []byte, knull, vnull bool)) (bool, error) {
	if f == nil {
		return false, nil
	}
	k, v := f.leaf, f.leaf2
	first := true
	for {
		if !first {
			more, err := k.nextInRow()
			if err != nil || !more {
				return true, err
			}
		}
		if err := k.next(); err != nil {
			return false, err
		}
		if v != nil {
			if err := v.next(); err != nil {
				return false, err
			}
			if v.rep != k.rep || (v.def < f.plan.emptyDef) != (k.def < f.plan.emptyDef) {
				return false, fmt.Errorf("column %s: key and value columns disagree", f.plan.path)
			}
		}
		if first {
			first = false
			if k.rep != 0 {
				return false, fmt.Errorf("column %s: row does not start at repetition level 0", f.plan.path)
			}
			if k.def < f.plan.nullDef {
				return false, nil
			}
			if k.def < f.plan.emptyDef {
				return true, nil
			}
		} else if k.def < f.plan.emptyDef {
			return false, fmt.Errorf("column %s: empty entry inside a row", f.plan.path)
		}
		var vb []byte
		vnull := true
		if v != nil && v.has() {
			vb, vnull = v.bytes(), false
		}
		fn(k.bytes(), vb, !k.has(), vnull)
	}
}

// strMap reads a map<string,string> with interned keys and values; nil when null.
func (d *pqDecoder) strMap(f *pqField, in *pqInterner) map[string]string {
	if f == nil || d.ferr != nil {
		return nil
	}
	var m map[string]string
	ok, err := f.entries(func(k, v []byte, knull, vnull bool) {
		if m == nil {
			m = make(map[string]string, 1)
		}
		if !knull {
			m[in.str(k)] = in.str(v)
		}
	})
	if err != nil || !ok {
		d.ferr = err
		return nil
	}
	if m == nil {
		m = map[string]string{}
	}
	return m
}

// strList reads an array<string>; nil when null, non-nil otherwise.
func (d *pqDecoder) strList(f *pqField) []string {
	if f == nil || d.ferr != nil {
		return nil
	}
	out := []string{}
	ok, err := f.entries(func(k, _ []byte, knull, _ bool) {
		if !knull {
			out = append(out, string(k))
		}
	})
	if err != nil || !ok {
		d.ferr = err
		return nil
	}
	return out
}

const (
	pqPVCacheMaxEntries = 1 << 16
	pqPVCacheMaxKey     = 1024
)

// partitionValues reads a partitionValues map, null values as nil pointers; adds with equal
// values get the same map. A null map reads as nil, or as an empty map when emptyIfNull.
func (d *pqDecoder) partitionValues(f *pqField, emptyIfNull bool) map[string]*string {
	if f == nil || d.ferr != nil {
		if emptyIfNull {
			return d.emptyPV
		}
		return nil
	}
	key := d.pvKey[:0]
	n := 0
	ok, err := f.entries(func(k, v []byte, knull, vnull bool) {
		if knull {
			return
		}
		n++
		key = binary.AppendUvarint(key, uint64(len(k)))
		key = append(key, k...)
		if vnull {
			key = append(key, 0)
		} else {
			key = binary.AppendUvarint(append(key, 1), uint64(len(v)))
			key = append(key, v...)
		}
	})
	d.pvKey = key
	if err != nil {
		d.ferr = err
		return nil
	}
	if !ok && !emptyIfNull {
		return nil
	}
	if n == 0 {
		return d.emptyPV
	}
	if m, ok := d.pvCache[string(key)]; ok {
		return m
	}
	m := make(map[string]*string, n)
	for b := key; len(b) > 0; {
		kl, w := binary.Uvarint(b)
		k := d.intern.str(b[w : w+int(kl)])
		b = b[w+int(kl):]
		if b[0] == 0 {
			m[k] = nil
			b = b[1:]
			continue
		}
		vl, w := binary.Uvarint(b[1:])
		m[k] = d.intern.ptr(b[1+w : 1+w+int(vl)])
		b = b[1+w+int(vl):]
	}
	if len(key) <= pqPVCacheMaxKey {
		if len(d.pvCache) >= pqPVCacheMaxEntries {
			clear(d.pvCache)
		}
		d.pvCache[string(key)] = m
	}
	return m
}

// deletionVector reads a deletionVector struct; nil when null.
func (d *pqDecoder) deletionVector(f *pqField) *delta.DeletionVector {
	if f == nil || d.ferr != nil {
		return nil
	}
	present := false
	for _, sf := range f.sub {
		if sf != nil {
			if err := sf.leaf.advance(); err != nil {
				d.ferr = err
				return nil
			}
			present = present || sf.leaf.def >= f.plan.nullDef
		}
	}
	if !present {
		return nil
	}
	dv := d.dvs.alloc()
	if sf := f.sub[0]; sf != nil && sf.leaf.has() {
		dv.StorageType = d.intern.str(sf.leaf.bytes())
	}
	if sf := f.sub[1]; sf != nil && sf.leaf.has() {
		dv.PathOrInlineDv = d.arena.str(sf.leaf.bytes())
	}
	if sf := f.sub[2]; sf != nil && sf.leaf.has() {
		o := int32(sf.leaf.int())
		dv.Offset = &o
	}
	if sf := f.sub[3]; sf != nil {
		dv.SizeInBytes = int32(sf.leaf.int())
	}
	if sf := f.sub[4]; sf != nil {
		dv.Cardinality = sf.leaf.int()
	}
	return dv
}
