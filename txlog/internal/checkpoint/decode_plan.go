package checkpoint

import (
	"fmt"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// ---- schema plan -------------------------------------------------------------------------------

type pqKind int

const (
	pqString pqKind = iota
	pqLong
	pqInt
	pqBoolean
	pqStrMap
	pqStrList
	pqStruct
)

func (k pqKind) String() string {
	return [...]string{"a string", "a long (int64)", "an int (int32)", "a boolean", "a map<string,string>",
		"an array<string>", "a struct"}[k]
}

// pqFieldSpec names a field of an action and its type in the protocol's checkpoint schema.
type pqFieldSpec struct {
	name string
	kind pqKind
	sub  []pqFieldSpec // pqStruct
}

var pqDVSpec = []pqFieldSpec{{"storageType", pqString, nil}, {"pathOrInlineDv", pqString, nil},
	{"offset", pqInt, nil}, {"sizeInBytes", pqInt, nil}, {"cardinality", pqLong, nil}}

// pqSpecs are the fields Decode reads. The first field that is in the file and not
// repeated tells, row by row, whether the action is present.
var pqSpecs = map[string][]pqFieldSpec{
	"add": {{"path", pqString, nil}, {"partitionValues", pqStrMap, nil}, {"size", pqLong, nil},
		{"modificationTime", pqLong, nil}, {"dataChange", pqBoolean, nil}, {"stats", pqString, nil},
		{"tags", pqStrMap, nil}, {"deletionVector", pqStruct, pqDVSpec}, {"baseRowId", pqLong, nil},
		{"defaultRowCommitVersion", pqLong, nil}, {"clusteringProvider", pqString, nil}},
	"remove": {{"path", pqString, nil}, {"deletionTimestamp", pqLong, nil}, {"dataChange", pqBoolean, nil},
		{"extendedFileMetadata", pqBoolean, nil}, {"partitionValues", pqStrMap, nil}, {"size", pqLong, nil},
		{"stats", pqString, nil}, {"tags", pqStrMap, nil}, {"deletionVector", pqStruct, pqDVSpec},
		{"baseRowId", pqLong, nil}, {"defaultRowCommitVersion", pqLong, nil}},
	"metaData": {{"id", pqString, nil}, {"name", pqString, nil}, {"description", pqString, nil},
		{"format", pqStruct, []pqFieldSpec{{"provider", pqString, nil}, {"options", pqStrMap, nil}}},
		{"schemaString", pqString, nil}, {"partitionColumns", pqStrList, nil}, {"createdTime", pqLong, nil},
		{"configuration", pqStrMap, nil}},
	"protocol": {{"minReaderVersion", pqInt, nil}, {"minWriterVersion", pqInt, nil},
		{"readerFeatures", pqStrList, nil}, {"writerFeatures", pqStrList, nil}},
	"txn":            {{"appId", pqString, nil}, {"version", pqLong, nil}, {"lastUpdated", pqLong, nil}},
	"domainMetadata": {{"domain", pqString, nil}, {"configuration", pqString, nil}, {"removed", pqBoolean, nil}},
	"sidecar": {{"path", pqString, nil}, {"sizeInBytes", pqLong, nil}, {"modificationTime", pqLong, nil},
		{"tags", pqStrMap, nil}},
	"checkpointMetadata": {{"version", pqLong, nil}, {"tags", pqStrMap, nil}},
}

// pqFieldPlan is a field found in the file: its column(s) and definition levels.
type pqFieldPlan struct {
	spec pqFieldSpec
	path string
	// Primitive fields: the leaf. Maps: key and (optional) value leaves. Lists: the element.
	leaf, leaf2 int
	// nullDef: below it the field is null. emptyDef (maps, lists): below it the field is
	// empty. Primitive values are present at the leaf's maximum definition level.
	nullDef, emptyDef int16
	sub               []*pqFieldPlan // pqStruct, in spec order; nil entries for absent fields
}

type pqActionPlan struct {
	name     string
	def      int16 // definition level of the action struct: below it the row has no action
	fields   []*pqFieldPlan
	presence int // index in fields of the leaf that tells whether the action is present
	// add: leaves whose row group statistics tell whether stats_parsed is needed.
	pathLeaf, statsLeaf int
	hasParsed           bool
}

func pqDefLevel(n schema.Node) int16 {
	var d int16
	for ; n != nil && n.Parent() != nil; n = n.Parent() {
		if n.RepetitionType() != parquet.Repetitions.Required {
			d++
		}
	}
	return d
}

func pqRepeated(n schema.Node) bool { return n.RepetitionType() == parquet.Repetitions.Repeated }

func pqTypeErr(col string, want pqKind, got string) error {
	return fmt.Errorf("checkpoint column %s: want %s, found %s", col, want, got)
}

func pqNodeDesc(n schema.Node) string {
	if p, ok := n.(*schema.PrimitiveNode); ok {
		s := p.PhysicalType().String()
		if pqRepeated(n) {
			s = "repeated " + s
		}
		return s
	}
	g := n.(*schema.GroupNode)
	if lt := g.LogicalType(); lt != nil && lt.String() != "None" {
		return "a group (" + lt.String() + ")"
	}
	return "a group"
}

func (d *pqDecoder) planAction(sch *schema.Schema, n schema.Node, name string) (*pqActionPlan, error) {
	g, ok := n.(*schema.GroupNode)
	if !ok || pqRepeated(n) {
		return nil, pqTypeErr(name, pqStruct, pqNodeDesc(n))
	}
	p := &pqActionPlan{name: name, def: pqDefLevel(g), presence: -1, pathLeaf: -1, statsLeaf: -1}
	for _, spec := range pqSpecs[name] {
		if name == "add" && spec.name == "stats" && d.cfg.skipStats {
			p.fields = append(p.fields, nil)
			continue
		}
		fp, err := planField(sch, g, spec, name+"."+spec.name)
		if err != nil {
			return nil, err
		}
		p.fields = append(p.fields, fp)
		if fp != nil && p.presence < 0 && (spec.kind <= pqBoolean) {
			p.presence = len(p.fields) - 1
		}
	}
	if name == "add" || name == "remove" || name == "sidecar" {
		if p.fields[0] == nil {
			return nil, fmt.Errorf("checkpoint column %s has no path field", name)
		}
	}
	if p.presence < 0 {
		// No field this decoder knows, or only maps and lists: nothing to decode.
		return nil, nil
	}
	if name == "add" {
		p.pathLeaf = p.fields[0].leaf
		if f := p.fields[5]; f != nil {
			p.statsLeaf = f.leaf
		}
		if !d.cfg.skipStats {
			if i := g.FieldIndexByName("stats_parsed"); i >= 0 {
				if sg, ok := g.Field(i).(*schema.GroupNode); ok && !pqRepeated(sg) {
					p.hasParsed = true
				}
			}
		}
	}
	return p, nil
}

// planField finds spec in parent and checks its type; nil when absent.
func planField(sch *schema.Schema, parent *schema.GroupNode, spec pqFieldSpec, path string) (*pqFieldPlan, error) {
	i := parent.FieldIndexByName(spec.name)
	if i < 0 {
		return nil, nil
	}
	n := parent.Field(i)
	fp := &pqFieldPlan{spec: spec, path: path, leaf: -1, leaf2: -1, nullDef: pqDefLevel(n)}
	switch spec.kind {
	case pqString, pqLong, pqInt, pqBoolean:
		pn, ok := n.(*schema.PrimitiveNode)
		if !ok || pqRepeated(n) || !pqPhysicalOK(spec.kind, pn.PhysicalType()) {
			return nil, pqTypeErr(path, spec.kind, pqNodeDesc(n))
		}
		fp.leaf = sch.ColumnIndexByNode(pn)
	case pqStruct:
		g, ok := n.(*schema.GroupNode)
		if !ok || pqRepeated(n) {
			return nil, pqTypeErr(path, spec.kind, pqNodeDesc(n))
		}
		any := false
		for _, s := range spec.sub {
			sp, err := planField(sch, g, s, path+"."+s.name)
			if err != nil {
				return nil, err
			}
			fp.sub = append(fp.sub, sp)
			any = any || sp != nil
		}
		if !any {
			return nil, nil
		}
	case pqStrMap:
		// optional group m (MAP) { repeated group key_value { required binary key; optional binary value } },
		// or the repeated key/value group itself.
		var kv *schema.GroupNode
		if g, ok := n.(*schema.GroupNode); ok {
			if pqRepeated(g) {
				kv = g
			} else if g.NumFields() == 1 && pqRepeated(g.Field(0)) {
				kv, _ = g.Field(0).(*schema.GroupNode)
			}
		}
		if kv == nil || kv.NumFields() < 1 || kv.NumFields() > 2 {
			return nil, pqTypeErr(path, spec.kind, pqNodeDesc(n))
		}
		for j := 0; j < kv.NumFields(); j++ {
			pn, ok := kv.Field(j).(*schema.PrimitiveNode)
			if !ok || pqRepeated(pn) || pn.PhysicalType() != parquet.Types.ByteArray {
				return nil, pqTypeErr(path, spec.kind, "a map with "+pqNodeDesc(kv.Field(j))+" entries")
			}
			if j == 0 {
				fp.leaf = sch.ColumnIndexByNode(pn)
			} else {
				fp.leaf2 = sch.ColumnIndexByNode(pn)
			}
		}
		if pqRepeated(n) {
			fp.nullDef = 0 // a bare repeated group cannot be null, only empty
		}
		fp.emptyDef = pqDefLevel(kv)
	case pqStrList:
		// optional group l (LIST) { repeated group list { optional binary element } },
		// the two-level form with a repeated binary, or a bare repeated binary.
		var elem *schema.PrimitiveNode
		var rep schema.Node
		switch v := n.(type) {
		case *schema.PrimitiveNode:
			if pqRepeated(v) {
				elem, rep = v, v
			}
		case *schema.GroupNode:
			if !pqRepeated(v) && v.NumFields() == 1 && pqRepeated(v.Field(0)) {
				rep = v.Field(0)
				switch c := rep.(type) {
				case *schema.PrimitiveNode:
					elem = c
				case *schema.GroupNode:
					if c.NumFields() == 1 {
						if e, ok := c.Field(0).(*schema.PrimitiveNode); ok && !pqRepeated(e) {
							elem = e
						}
					}
				}
			}
		}
		if elem == nil || elem.PhysicalType() != parquet.Types.ByteArray {
			return nil, pqTypeErr(path, spec.kind, pqNodeDesc(n))
		}
		fp.leaf = sch.ColumnIndexByNode(elem)
		if pqRepeated(n) {
			fp.nullDef = 0
		}
		fp.emptyDef = pqDefLevel(rep)
	}
	return fp, nil
}

func pqPhysicalOK(k pqKind, t parquet.Type) bool {
	switch k {
	case pqString:
		return t == parquet.Types.ByteArray
	case pqLong, pqInt:
		return t == parquet.Types.Int64 || t == parquet.Types.Int32
	case pqBoolean:
		return t == parquet.Types.Boolean
	}
	return false
}

// pqAllAddsHaveStats reports, from the row group's column statistics, whether every add with a
// path also has a JSON stats string (so stats_parsed need not be read). Without statistics it
// answers false.
func pqAllAddsHaveStats(rgm *metadata.RowGroupMetaData, pathLeaf, statsLeaf int) bool {
	if statsLeaf < 0 || pathLeaf < 0 {
		return false
	}
	nulls := func(leaf int) (int64, bool) {
		cc, err := rgm.ColumnChunk(leaf)
		if err != nil {
			return 0, false
		}
		st, err := cc.Statistics()
		if err != nil || st == nil || !st.HasNullCount() {
			return 0, false
		}
		return st.NullCount(), true
	}
	pn, ok1 := nulls(pathLeaf)
	sn, ok2 := nulls(statsLeaf)
	return ok1 && ok2 && pn == sn
}
