package pqdecode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime/debug"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// fieldShape describes how a supported top-level field is laid out.
type fieldShape struct {
	nested bool // false: a flat leaf (ReadColumn)
	isMap  bool

	leaves    []int // leaf columns: one (flat, list) or two (map key, map value)
	kinds     []kind
	ccs       []*metadata.ColumnChunkMetaData
	maxDefs   []int16          // max definition level per leaf
	elemTypes []arrow.DataType // Arrow type of each leaf's values

	outerOptional bool  // the list/map itself may be null
	defOuter      int16 // definition level from which the list/map is present (0 if required)
	defSlot       int16 // definition level from which an element / map entry exists
}

// SupportedField reports whether ReadField can decode top-level field field
// (an index into the file's top-level schema fields, numbered as pqarrow's
// Manifest.Fields) of row group rg into an Arrow array of type dt. It only
// looks at metadata. It is true for every flat leaf Supported accepts and for
// LIST<primitive> and MAP<primitive, primitive> with one repetition level, in
// the standard 3-level layouts, the legacy 2-level list layout and a bare
// repeated primitive.
func SupportedField(pf *file.Reader, rg, field int, dt arrow.DataType) bool {
	_, err := checkField(pf, rg, field, dt)
	return err == nil
}

// firstLeaf returns the index of the first leaf column of top-level field
// field and its number of leaves.
func firstLeaf(root *schema.GroupNode, field int) (int, int) {
	first := 0
	for i := 0; i < field; i++ {
		first += countLeaves(root.Field(i))
	}
	return first, countLeaves(root.Field(field))
}

func countLeaves(n schema.Node) int {
	g, ok := n.(*schema.GroupNode)
	if !ok {
		return 1
	}
	c := 0
	for i := 0; i < g.NumFields(); i++ {
		c += countLeaves(g.Field(i))
	}
	return c
}

// checkField validates field against dt and returns its shape.
func checkField(pf *file.Reader, rg, field int, dt arrow.DataType) (*fieldShape, error) {
	if pf == nil || dt == nil {
		return nil, errors.New("nil reader or data type")
	}
	md := pf.MetaData()
	if md == nil || md.Schema == nil {
		return nil, errors.New("no file metadata")
	}
	root := md.Schema.Root()
	if field < 0 || field >= root.NumFields() {
		return nil, fmt.Errorf("field %d out of range [0,%d)", field, root.NumFields())
	}
	if rg < 0 || rg >= md.NumRowGroups() {
		return nil, fmt.Errorf("row group %d out of range [0,%d)", rg, md.NumRowGroups())
	}
	if md.IsSetEncryptionAlgorithm() || md.FileDecryptor != nil {
		return nil, errors.New("encrypted file")
	}
	leaf, nleaves := firstLeaf(root, field)
	if leaf+nleaves > md.Schema.NumColumns() {
		return nil, errors.New("schema leaf count mismatch")
	}
	top := root.Field(field)
	if top.Type() == schema.Primitive && top.RepetitionType() != parquet.Repetitions.Repeated {
		if _, _, err := check(pf, rg, leaf, dt); err != nil {
			return nil, err
		}
		return &fieldShape{leaves: []int{leaf}}, nil
	}

	sh := &fieldShape{nested: true}
	// leafNodes are the primitive leaves; rep is the repeated node.
	var leafNodes []*schema.PrimitiveNode
	var rep schema.Node
	switch t := dt.(type) {
	case *arrow.ListType:
		elem := t.ElemField()
		switch n := top.(type) {
		case *schema.PrimitiveNode:
			// bare repeated primitive: repeated T name;
			rep = n
			leafNodes = []*schema.PrimitiveNode{n}
		case *schema.GroupNode:
			if !n.LogicalType().Equals(schema.NewListLogicalType()) || n.NumFields() != 1 ||
				n.RepetitionType() == parquet.Repetitions.Repeated {
				return nil, fmt.Errorf("field %s is not a LIST group", n.Name())
			}
			rep = n.Field(0)
			if rep.RepetitionType() != parquet.Repetitions.Repeated {
				return nil, fmt.Errorf("LIST group %s: child is not repeated", n.Name())
			}
			switch r := rep.(type) {
			case *schema.PrimitiveNode:
				leafNodes = []*schema.PrimitiveNode{r} // legacy 2-level list
			case *schema.GroupNode:
				// 3-level list; pqarrow reads a repeated group named "array" or
				// "<list>_tuple" as a struct element.
				if r.NumFields() != 1 || r.Name() == "array" || r.Name() == n.Name()+"_tuple" {
					return nil, fmt.Errorf("LIST %s: element is not a primitive", n.Name())
				}
				p, ok := r.Field(0).(*schema.PrimitiveNode)
				if !ok || p.RepetitionType() == parquet.Repetitions.Repeated {
					return nil, fmt.Errorf("LIST %s: element is not a non-repeated primitive", n.Name())
				}
				leafNodes = []*schema.PrimitiveNode{p}
			}
		}
		sh.elemTypes = []arrow.DataType{elem.Type}
		if !elem.Nullable && leafNodes[0].RepetitionType() == parquet.Repetitions.Optional {
			return nil, errors.New("optional list element read into a non-nullable element field")
		}
	case *arrow.MapType:
		n, ok := top.(*schema.GroupNode)
		if !ok || !n.LogicalType().Equals(schema.MapLogicalType{}) || n.NumFields() != 1 ||
			n.RepetitionType() == parquet.Repetitions.Repeated {
			return nil, fmt.Errorf("field %s is not a MAP group", top.Name())
		}
		kv, ok := n.Field(0).(*schema.GroupNode)
		if !ok || kv.RepetitionType() != parquet.Repetitions.Repeated || kv.NumFields() != 2 {
			return nil, fmt.Errorf("MAP %s: key_value is not a repeated group of two fields", n.Name())
		}
		rep = kv
		for i := 0; i < 2; i++ {
			p, ok := kv.Field(i).(*schema.PrimitiveNode)
			if !ok || p.RepetitionType() == parquet.Repetitions.Repeated {
				return nil, fmt.Errorf("MAP %s: key or value is not a non-repeated primitive", n.Name())
			}
			leafNodes = append(leafNodes, p)
		}
		if leafNodes[0].RepetitionType() != parquet.Repetitions.Required {
			return nil, fmt.Errorf("MAP %s: key is not required", n.Name())
		}
		st, ok := t.Elem().(*arrow.StructType)
		if !ok || st.NumFields() != 2 {
			return nil, errors.New("map type without a two-field entry struct")
		}
		if !st.Field(1).Nullable && leafNodes[1].RepetitionType() == parquet.Repetitions.Optional {
			return nil, errors.New("optional map value read into a non-nullable item field")
		}
		sh.isMap = true
		sh.elemTypes = []arrow.DataType{st.Field(0).Type, st.Field(1).Type}
	default:
		return nil, fmt.Errorf("cannot decode field %s into %s", top.Name(), dt)
	}
	if nleaves != len(leafNodes) {
		return nil, errors.New("schema leaf count mismatch")
	}

	// Definition level thresholds: every optional or repeated node on the
	// path adds one; the repeated node separates the list/map from its
	// elements.
	sh.defSlot = -1
	for i, ln := range leafNodes {
		var path []schema.Node
		for x := schema.Node(ln); x != nil && x != schema.Node(root); x = x.Parent() {
			path = append(path, x)
		}
		var def, reps int16
		defOuter, defSlot := int16(-1), int16(-1)
		outerOpt := false
		for j := len(path) - 1; j >= 0; j-- {
			x := path[j]
			switch x.RepetitionType() {
			case parquet.Repetitions.Optional:
				def++
				if defSlot < 0 {
					outerOpt = true
				}
			case parquet.Repetitions.Repeated:
				defOuter = def
				def++
				reps++
				defSlot = def
			}
			if x == rep && x.RepetitionType() != parquet.Repetitions.Repeated {
				return nil, errors.New("repeated node is not repeated")
			}
		}
		col := md.Schema.Column(leaf + i)
		if col.SchemaNode() != schema.Node(ln) {
			return nil, errors.New("schema leaf order mismatch")
		}
		if reps != 1 || col.MaxRepetitionLevel() != 1 || col.MaxDefinitionLevel() != def || def-defSlot > 1 {
			return nil, fmt.Errorf("column %s: unsupported levels (max rep %d, max def %d)",
				col.Path(), col.MaxRepetitionLevel(), col.MaxDefinitionLevel())
		}
		if def > 8 {
			return nil, fmt.Errorf("column %s: max definition level %d too large", col.Path(), def)
		}
		if i == 0 {
			sh.defOuter, sh.defSlot, sh.outerOptional = defOuter, defSlot, outerOpt
		} else if defOuter != sh.defOuter || defSlot != sh.defSlot {
			return nil, errors.New("map key and value levels differ")
		}
		k, cc, err := chunkKind(md, rg, leaf+i, sh.elemTypes[i])
		if err != nil {
			return nil, err
		}
		sh.leaves = append(sh.leaves, leaf+i)
		sh.kinds = append(sh.kinds, k)
		sh.ccs = append(sh.ccs, cc)
		sh.maxDefs = append(sh.maxDefs, def)
	}
	return sh, nil
}

// ReadField decodes top-level field field of row group rg into one array of
// type dt with RowGroup(rg).NumRows() rows, equal to what pqarrow reads,
// allocating its buffers from mem. For a flat leaf it is ReadColumn. The
// caller releases the array.
func ReadField(pf *file.Reader, rg, field int, dt arrow.DataType, mem memory.Allocator) (arr arrow.Array, err error) {
	sh, err := checkField(pf, rg, field, dt)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	if !sh.nested {
		return ReadColumn(pf, rg, sh.leaves[0], dt, mem)
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	numRows := pf.MetaData().RowGroup(rg).NumRows()
	if numRows < 0 || numRows >= math.MaxInt32 {
		return nil, fmt.Errorf("pqdecode: row group %d has invalid row count %d", rg, numRows)
	}
	r := &nestedReader{sh: sh, mem: mem, numRows: int(numRows)}
	name := pf.MetaData().Schema.Root().Field(field).Name()
	defer func() {
		if rec := recover(); rec != nil {
			arr = nil
			err = fmt.Errorf("%w: %v\n%s", errPanic, rec, debug.Stack())
		}
		if err != nil {
			r.release()
			err = fmt.Errorf("pqdecode: field %s, row group %d: %w", name, rg, err)
		}
	}()
	r.allocOuter()
	for i, leaf := range sh.leaves {
		if err := r.readLeaf(pf, rg, i, leaf); err != nil {
			return nil, fmt.Errorf("column %s: %w", pf.MetaData().Schema.Column(leaf).Path(), err)
		}
	}
	return r.finish(dt), nil
}

// nestedReader decodes the leaf column(s) of one list or map field.
type nestedReader struct {
	sh      *fieldShape
	mem     memory.Allocator
	numRows int

	validity  *memory.Buffer // outer validity; nil for a required list/map
	valid     []byte
	offsetBuf *memory.Buffer // numRows+1 int32 offsets
	offsets   []int32
	nullCount int
	slots     int // total elements / map entries

	decs     []*decoder
	rep, def []uint32 // per-page level scratch
	repZero  bool     // the page's repetition levels are all 0 and not in rep
}

func (r *nestedReader) allocOuter() {
	n := r.numRows
	if r.sh.outerOptional {
		r.validity = memory.NewResizableBuffer(r.mem)
		sz := int(bytesForBits(n))
		r.validity.Resize(sz + 8) // walk writes whole words
		r.valid = r.validity.Buf()
		clear(r.valid) // walk only sets bits
		r.validity.ResizeNoShrink(sz)
	}
	r.offsetBuf = memory.NewResizableBuffer(r.mem)
	r.offsetBuf.Resize((n + 1) * 4)
	r.offsets = arrow.Int32Traits.CastFromBytes(r.offsetBuf.Bytes())
}

func (r *nestedReader) release() {
	for _, b := range []*memory.Buffer{r.validity, r.offsetBuf} {
		if b != nil {
			b.Release()
		}
	}
	r.validity, r.offsetBuf = nil, nil
	for _, d := range r.decs {
		d.release()
	}
	r.decs = nil
}

// levelWalker turns the repetition and definition levels of one leaf into the
// outer offsets and validity (or, for the second leaf of a map, checks them
// against those the first leaf produced) and into the element validity bits.
type levelWalker struct {
	defOuter, defSlot, maxDef uint32
	elemOptional              bool
	verify                    bool
	cls                       [256]uint8 // class of each definition level

	offsets []int32
	valid   []byte // outer validity, nil when the list/map is required
	numRows int

	row       int // rows started so far
	slots     int // elements so far
	nullCount int
}

// Level classes (levelWalker.cls): what a definition level means.
const (
	clsPresent = 1 << iota // the list/map is not null
	clsSlot                // an element / map entry exists
	clsSet                 // the element / map value is not null
	clsInvalid             // above the max definition level
)

// classes builds the class table of the definition levels 0..255.
func (w *levelWalker) classes() {
	for dl := range w.cls {
		var c uint8
		if uint32(dl) >= w.defOuter {
			c |= clsPresent
		}
		if uint32(dl) >= w.defSlot {
			c |= clsSlot
		}
		if uint32(dl) == w.maxDef {
			c |= clsSet
		}
		if uint32(dl) > w.maxDef {
			c = clsInvalid
		}
		w.cls[dl] = c
	}
}

// walk processes one page's levels (repetition levels are 0 or 1: they are
// decoded with bit width 1). child receives the validity bit of each element
// at bit pos onwards (when elements are optional); those bits, like the outer
// validity bits, must be zero beforehand, and both bitmaps need 8 bytes of
// padding. It returns the number of elements of the page and how many of
// them are not null.
func (w *levelWalker) walk(rep, def []uint32, child []byte, pos int, repZero, repFilled bool, maxDefSeen uint32) (slots, nonNull int, err error) {
	if repZero && maxDefSeen <= w.maxDef && w.row+len(def) <= w.numRows && pos == w.slots {
		// Every level starts a row (at most one element per row).
		if !w.verify {
			slots, nonNull = w.fillRows(def, child)
			return slots, nonNull, nil
		}
		if slots, nonNull, ok := w.checkRows(def, child); ok {
			return slots, nonNull, nil
		}
		// disagreement: the general loop finds and reports it
	}
	if !repFilled {
		clear(rep[:len(def)])
	}
	if w.verify {
		return w.check(rep, def, child, pos)
	}
	rep = rep[:len(def)]
	cls := &w.cls
	row, base, numRows := w.row, w.slots, w.numRows
	offsets, valid := w.offsets[:numRows], w.valid
	elemOptional := w.elemOptional
	present := 0
	startRow := row
	// Validity bits are gathered in words (vacc for the rows, cacc for the
	// elements) and ORed into the bitmaps when a word is complete. The loop is
	// branch-free on the level values except for the repetition level, which
	// is predictable (all 0 for one element per row, mostly 1 for long lists).
	var vacc, cacc uint64
	for i, dl := range def {
		c := cls[dl&255]
		if rep[i] == 0 {
			if c&clsInvalid != 0 || row >= numRows {
				w.row = row
				return 0, 0, w.levelError(rep[i], dl)
			}
			offsets[row] = int32(base + slots)
			if valid != nil {
				p := uint64(c & clsPresent)
				vacc |= p << (row & 63)
				present += int(p)
				if row&63 == 63 {
					orWord(valid, row>>6, vacc)
					vacc = 0
				}
			}
			row++
		} else if c&(clsInvalid|clsSlot) != clsSlot || row == 0 {
			w.row = row
			return 0, 0, w.levelError(rep[i], dl)
		}
		s := int(c>>1) & 1
		if elemOptional {
			set := uint64(c>>2) & 1
			q := pos + slots
			cacc |= set << (q & 63)
			nonNull += int(set)
			if s != 0 && (q+1)&63 == 0 {
				orWord(child, q>>6, cacc)
				cacc = 0
			}
		}
		slots += s
	}
	if valid != nil {
		if vacc != 0 {
			orWord(valid, row>>6, vacc)
		}
		w.nullCount += row - startRow - present
	}
	if elemOptional && cacc != 0 {
		orWord(child, (pos+slots)>>6, cacc)
	}
	if !elemOptional {
		nonNull = slots
	}
	w.row = row
	w.slots += slots
	return slots, nonNull, nil
}

// fillRows is walk for a page whose repetition levels are all 0 and whose
// definition levels are all valid, with room for len(def) more rows. The
// child bitmap position is w.slots (the child decoder has decoded as many
// values as there are elements so far). Offsets, row validity and element
// validity are separate loops with few live variables each, so that nothing
// spills to the stack.
func (w *levelWalker) fillRows(def []uint32, child []byte) (slots, nonNull int) {
	row, start := w.row, w.slots
	q := fillOffsets32(&w.cls, def, w.offsets[row:row+len(def)], start)
	if w.valid != nil {
		rowBits(&w.cls, def, w.valid, row)
		w.nullCount += len(def) - countSet(w.valid, row, len(def))
	}
	slots, nonNull = q-start, q-start
	if w.elemOptional {
		elemBits(&w.cls, def, child, start)
		nonNull = countSet(child, start, slots)
	}
	w.row += len(def)
	w.slots = q
	return slots, nonNull
}

// checkRows is check for a page whose repetition levels are all 0 and whose
// definition levels are all valid, with room for len(def) more rows. It
// returns ok false when the levels disagree with the outer offsets and
// validity (the caller then runs check to report where).
func (w *levelWalker) checkRows(def []uint32, child []byte) (slots, nonNull int, ok bool) {
	row, start := w.row, w.slots
	q, ok := checkOffsets32(&w.cls, def, w.offsets[row:row+len(def)], start)
	if !ok || (w.valid != nil && !rowBitsEqual(&w.cls, def, w.valid, row)) {
		return 0, 0, false
	}
	slots, nonNull = q-start, q-start
	if w.elemOptional {
		elemBits(&w.cls, def, child, start)
		nonNull = countSet(child, start, slots)
	}
	w.row += len(def)
	w.slots = q
	return slots, nonNull, true
}

// fillOffsets32 stores the element count so far (starting at q) as the offset
// of each row (one row per level) and returns the count after the last.
func fillOffsets32(cls *[256]uint8, def []uint32, offs []int32, q int) int {
	offs = offs[:len(def)]
	for i, dl := range def {
		offs[i] = int32(q)
		q += int(cls[dl&255]>>1) & 1
	}
	return q
}

// checkOffsets32 is fillOffsets32 comparing instead of storing.
func checkOffsets32(cls *[256]uint8, def []uint32, offs []int32, q int) (int, bool) {
	offs = offs[:len(def)]
	var diff int32
	for i, dl := range def {
		diff |= offs[i] ^ int32(q)
		q += int(cls[dl&255]>>1) & 1
	}
	return q, diff == 0
}

// rowBits ORs the presence bit of each row (one per level) into valid from
// bit row on. valid needs 8 bytes of padding.
func rowBits(cls *[256]uint8, def []uint32, valid []byte, row int) {
	var acc uint64
	for _, dl := range def {
		acc |= uint64(cls[dl&255]&clsPresent) << (row & 63)
		if row&63 == 63 {
			orWord(valid, row>>6, acc)
			acc = 0
		}
		row++
	}
	if acc != 0 {
		orWord(valid, row>>6, acc)
	}
}

// rowBitsEqual reports whether valid holds the presence bit of each row (one
// per level) from bit row on.
func rowBitsEqual(cls *[256]uint8, def []uint32, valid []byte, row int) bool {
	var acc, mask, diff uint64
	for _, dl := range def {
		acc |= uint64(cls[dl&255]&clsPresent) << (row & 63)
		mask |= 1 << (row & 63)
		if row&63 == 63 {
			diff |= (loadWord(valid, row>>6) ^ acc) & mask
			acc, mask = 0, 0
		}
		row++
	}
	if mask != 0 {
		diff |= (loadWord(valid, row>>6) ^ acc) & mask
	}
	return diff == 0
}

// elemBits ORs the validity bit of each element into child from bit q on.
// child needs 8 bytes of padding.
func elemBits(cls *[256]uint8, def []uint32, child []byte, q int) {
	var acc uint64
	for _, dl := range def {
		c := cls[dl&255]
		acc |= uint64(c>>2&1) << (q & 63)
		s := int(c>>1) & 1
		if s != 0 && (q+1)&63 == 0 {
			orWord(child, q>>6, acc)
			acc = 0
		}
		q += s
	}
	if acc != 0 {
		orWord(child, q>>6, acc)
	}
}

func loadWord(bm []byte, word int) uint64 {
	return binary.LittleEndian.Uint64(bm[word*8 : word*8+8])
}

// check is walk for the second leaf of a map: instead of writing the outer
// offsets and validity it requires the levels to reproduce them.
func (w *levelWalker) check(rep, def []uint32, child []byte, pos int) (slots, nonNull int, err error) {
	rep = rep[:len(def)]
	cls := &w.cls
	row, base, numRows := w.row, w.slots, w.numRows
	offsets, valid := w.offsets[:numRows], w.valid
	elemOptional := w.elemOptional
	var cacc uint64
	for i, dl := range def {
		c := cls[dl&255]
		if rep[i] == 0 {
			if c&clsInvalid != 0 || row >= numRows {
				w.row = row
				return 0, 0, w.levelError(rep[i], dl)
			}
			if offsets[row] != int32(base+slots) || (valid != nil && valid[row>>3]>>(row&7)&1 != c&clsPresent) {
				return 0, 0, fmt.Errorf("map key and value columns disagree on the entries of row %d", row)
			}
			row++
		} else if c&(clsInvalid|clsSlot) != clsSlot || row == 0 {
			w.row = row
			return 0, 0, w.levelError(rep[i], dl)
		}
		s := int(c>>1) & 1
		if elemOptional {
			set := uint64(c>>2) & 1
			q := pos + slots
			cacc |= set << (q & 63)
			nonNull += int(set)
			if s != 0 && (q+1)&63 == 0 {
				orWord(child, q>>6, cacc)
				cacc = 0
			}
		}
		slots += s
	}
	if elemOptional && cacc != 0 {
		orWord(child, (pos+slots)>>6, cacc)
	}
	if !elemOptional {
		nonNull = slots
	}
	w.row = row
	w.slots += slots
	return slots, nonNull, nil
}

// levelError describes the invalid level pair (r, dl) met at row w.row.
func (w *levelWalker) levelError(r, dl uint32) error {
	switch {
	case r > 1:
		return fmt.Errorf("repetition level %d exceeds max 1", r)
	case dl > w.maxDef:
		return fmt.Errorf("definition level %d exceeds max %d", dl, w.maxDef)
	case r == 0:
		return fmt.Errorf("more than the row group's %d rows", w.numRows)
	case w.row == 0:
		return errors.New("first repetition level of the chunk is not 0")
	default:
		return fmt.Errorf("repetition level 1 with definition level %d (no element)", dl)
	}
}

// orWord ORs acc into the 64-bit little-endian word word of bm.
func orWord(bm []byte, word int, acc uint64) {
	b := bm[word*8 : word*8+8]
	binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)|acc)
}

// readLeaf decodes leaf column leaf (the i-th leaf of the field).
func (r *nestedReader) readLeaf(pf *file.Reader, rg, i, leaf int) error {
	sh := r.sh
	cc := sh.ccs[i]
	total := cc.NumValues()
	if total < int64(r.numRows) || total >= math.MaxInt32 {
		return fmt.Errorf("column chunk holds %d levels for %d rows", total, r.numRows)
	}
	d := &decoder{
		kind:     sh.kinds[i],
		mem:      r.mem,
		numRows:  int(total), // capacity: there are at most as many elements as levels
		optional: sh.maxDefs[i] > sh.defSlot,
	}
	if i > 0 {
		d.idx = r.decs[0].idx // the key column is done with its index scratch
	}
	r.decs = append(r.decs, d)
	d.alloc()
	clear(d.valid) // walk only sets bits
	w := &levelWalker{
		defOuter:     uint32(sh.defOuter),
		defSlot:      uint32(sh.defSlot),
		maxDef:       uint32(sh.maxDefs[i]),
		elemOptional: d.optional,
		verify:       i > 0,
		offsets:      r.offsets,
		valid:        r.valid,
		numRows:      r.numRows,
	}
	w.classes()
	pr, err := pf.RowGroup(rg).GetColumnPageReader(leaf)
	if err != nil {
		return err
	}
	defer pr.Close()
	levels := 0
	for {
		ok, err := nextPage(pr)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		n, err := r.page(d, w, pr.Page(), int(total)-levels)
		if err != nil {
			return err
		}
		levels += n
	}
	if err := pr.Err(); err != nil {
		return err
	}
	if w.row != r.numRows {
		return fmt.Errorf("row count mismatch: pages hold %d rows, row group has %d", w.row, r.numRows)
	}
	if w.verify {
		if r.slots != w.slots {
			return fmt.Errorf("map key column has %d entries, value column %d", r.slots, w.slots)
		}
	} else {
		r.offsets[r.numRows] = int32(w.slots)
		r.slots = w.slots
		r.nullCount = w.nullCount
	}
	return nil
}

// page decodes one page of a list/map leaf; remain is how many levels the
// chunk metadata still allows. It returns the number of levels of the page.
func (r *nestedReader) page(d *decoder, w *levelWalker, p file.Page, remain int) (int, error) {
	d.seenPages++
	var (
		buf    []byte
		n      int
		enc    parquet.Encoding
		maxRep uint32
		maxDef uint32
	)
	bwDef := bits.Len32(w.maxDef)
	switch pg := p.(type) {
	case *file.DictionaryPage:
		return 0, d.dictionaryPage(pg)
	case *file.DataPageV1:
		buf = pg.Data()
		if len(buf) != int(pg.UncompressedSize()) {
			return 0, fmt.Errorf("page %d: %w", d.seenPages, ErrStreamingPage)
		}
		n = int(pg.NumValues())
		if err := r.scratch(n, remain); err != nil {
			return 0, err
		}
		used, mr, err := r.repLevelsV1(pg.RepetitionLevelEncoding(), buf)
		maxRep = mr
		if err != nil {
			return 0, fmt.Errorf("data page v1: repetition levels: %w", err)
		}
		buf = buf[used:]
		used, maxDef, err = readLevelsV1(pg.DefinitionLevelEncoding(), buf, bwDef, r.def)
		if err != nil {
			return 0, fmt.Errorf("data page v1: definition levels: %w", err)
		}
		buf = buf[used:]
		enc = parquet.Encoding(pg.Encoding())
	case *file.DataPageV2:
		buf = pg.Data()
		if len(buf) != int(pg.UncompressedSize()) {
			return 0, fmt.Errorf("page %d: %w", d.seenPages, ErrStreamingPage)
		}
		n = int(pg.NumValues())
		if err := r.scratch(n, remain); err != nil {
			return 0, err
		}
		repLen, defLen := int64(pg.RepetitionLevelByteLen()), int64(pg.DefinitionLevelByteLen())
		if repLen < 0 || defLen < 0 || repLen+defLen > int64(len(buf)) {
			return 0, fmt.Errorf("data page v2: level lengths %d+%d exceed page size %d", repLen, defLen, len(buf))
		}
		var mr uint32
		var err error
		if hybridZero(buf[:repLen], 1, n) {
			r.repZero = true
		} else {
			r.repZero = false
			mr, err = decodeHybrid(buf[:repLen], 1, r.rep)
		}
		if err != nil {
			return 0, fmt.Errorf("data page v2: repetition levels: %w", err)
		}
		maxRep = mr
		if maxDef, err = decodeHybrid(buf[repLen:repLen+defLen], bwDef, r.def); err != nil {
			return 0, fmt.Errorf("data page v2: definition levels: %w", err)
		}
		buf = buf[repLen+defLen:]
		enc = parquet.Encoding(pg.Encoding())
	default:
		// Only data and dictionary pages are handed out by the page reader.
		return 0, nil
	}
	if r.repZero {
		maxRep = 0
	}
	slots, nonNull, err := w.walk(r.rep, r.def, d.valid, d.pos, maxRep == 0, !r.repZero, maxDef)
	if err != nil {
		return 0, fmt.Errorf("page %d: %w", d.seenPages, err)
	}
	if err := d.decodeValues(enc, buf, slots, nonNull); err != nil {
		return 0, err
	}
	return n, nil
}

// repLevelsV1 reads the repetition levels of a V1 page into r.rep, unless
// they are all 0 (RLE encoded): then it only sets r.repZero.
func (r *nestedReader) repLevelsV1(enc parquet.Encoding, buf []byte) (int, uint32, error) {
	r.repZero = false
	if enc == parquet.Encodings.RLE && len(buf) >= 4 {
		ln := uint64(binary.LittleEndian.Uint32(buf))
		if ln <= uint64(len(buf)-4) && hybridZero(buf[4:4+ln], 1, len(r.def)) {
			r.repZero = true
			return 4 + int(ln), 0, nil
		}
	}
	return readLevelsV1(enc, buf, 1, r.rep)
}

// scratch sizes the level scratch for a page of n levels.
func (r *nestedReader) scratch(n, remain int) error {
	if n < 0 || n > remain {
		return fmt.Errorf("page with %d levels exceeds the %d levels left in the column chunk", n, remain)
	}
	if cap(r.def) < n {
		r.rep = make([]uint32, n)
		r.def = make([]uint32, n)
	}
	r.rep, r.def = r.rep[:n], r.def[:n]
	return nil
}

// readLevelsV1 decodes len(dst) levels of bit width bw from the start of a V1
// data page section and returns the number of bytes they take and the largest
// level: RLE is the hybrid encoding behind a 4-byte length, BIT_PACKED the
// deprecated MSB-first packing of ceil(n*bw/8) bytes.
func readLevelsV1(enc parquet.Encoding, buf []byte, bw int, dst []uint32) (int, uint32, error) {
	switch enc {
	case parquet.Encodings.RLE:
		if len(buf) < 4 {
			return 0, 0, errTruncated
		}
		ln := uint64(binary.LittleEndian.Uint32(buf))
		if ln > uint64(len(buf)-4) {
			return 0, 0, fmt.Errorf("level length %d exceeds page size %d", ln, len(buf))
		}
		m, err := decodeHybrid(buf[4:4+ln], bw, dst)
		if err != nil {
			return 0, 0, err
		}
		return 4 + int(ln), m, nil
	case parquet.Encodings.BitPacked:
		nb := (len(dst)*bw + 7) / 8
		if nb > len(buf) {
			return 0, 0, errTruncated
		}
		bit := 0
		var m uint32
		for j := range dst {
			var v uint32
			for k := 0; k < bw; k++ {
				v = v<<1 | uint32(buf[bit>>3]>>(7-uint(bit&7))&1)
				bit++
			}
			dst[j] = v
			m = max(m, v)
		}
		return nb, m, nil
	default:
		return 0, 0, fmt.Errorf("unsupported level encoding %s", enc)
	}
}

// finish assembles the list or map array.
func (r *nestedReader) finish(dt arrow.DataType) arrow.Array {
	sh := r.sh
	children := make([]arrow.ArrayData, len(r.decs))
	for i, d := range r.decs {
		children[i] = d.finishData(sh.elemTypes[i])
	}
	r.decs = nil
	child := children[0]
	if sh.isMap {
		child = array.NewData(dt.(*arrow.MapType).Elem(), r.slots, []*memory.Buffer{nil}, children, 0, 0)
		for _, c := range children {
			c.Release()
		}
	}
	validity := r.validity
	if validity != nil && r.nullCount == 0 {
		validity.Release()
		validity = nil
	}
	data := array.NewData(dt, r.numRows, []*memory.Buffer{validity, r.offsetBuf}, []arrow.ArrayData{child}, r.nullCount, 0)
	child.Release()
	if validity != nil {
		validity.Release()
	}
	r.offsetBuf.Release()
	r.validity, r.offsetBuf = nil, nil
	arr := array.MakeFromData(data)
	data.Release()
	return arr
}
