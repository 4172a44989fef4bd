package checkpoint

import (
	"fmt"

	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/lakehouse/lake/internal/delta"
)

// ---- actions -------------------------------------------------------------------------------------

// pqAction decodes one action column of a row group, row by row.
type pqAction struct {
	plan     *pqActionPlan
	fields   []*pqField // as plan.fields
	presence *pqLeaf
	others   []*pqLeaf // every leaf but the presence leaf
	pending  int       // rows without the action whose levels the other leaves have not skipped
	add      *pqAddState
	decode   func(d *pqDecoder, a *pqAction) error
}

type pqAddState struct {
	statsField *pqFieldPlan // add.stats, read by a pqStatsPrefetch
	needParsed bool
}

func (d *pqDecoder) bindAction(rgr *file.RowGroupReader, p *pqActionPlan) (*pqAction, error) {
	a := &pqAction{plan: p}
	for i, fp := range p.fields {
		if p.name == "add" && i == 5 && fp != nil {
			// add.stats is decoded ahead, in its own goroutine (see pqStatsPrefetch).
			a.add = &pqAddState{statsField: fp}
			a.fields = append(a.fields, nil)
			continue
		}
		f, err := d.bindField(rgr, fp)
		if err != nil {
			return nil, err
		}
		a.fields = append(a.fields, f)
	}
	a.presence = a.fields[p.presence].leaf
	a.presence.presence = true
	for _, f := range a.fields {
		if f == nil {
			continue
		}
		for _, l := range f.leaves {
			if l != a.presence {
				a.others = append(a.others, l)
			}
		}
	}
	switch p.name {
	case "add":
		if a.add == nil {
			a.add = &pqAddState{}
		}
		a.add.needParsed = p.hasParsed &&
			(d.cfg.forceParsed || !pqAllAddsHaveStats(d.pf.MetaData().RowGroup(d.rowGroup), p.pathLeaf, p.statsLeaf))
		a.decode = (*pqDecoder).decodeAdd
	case "remove":
		a.decode = (*pqDecoder).decodeRemove
	case "metaData":
		a.decode = (*pqDecoder).decodeMetadata
	case "protocol":
		a.decode = (*pqDecoder).decodeProtocol
	case "txn":
		a.decode = (*pqDecoder).decodeTxn
	case "domainMetadata":
		a.decode = (*pqDecoder).decodeDomainMetadata
	case "sidecar":
		a.decode = (*pqDecoder).decodeSidecar
	case "checkpointMetadata":
		a.decode = (*pqDecoder).decodeCheckpointMetadata
	}
	return a, nil
}

func (a *pqAction) row(d *pqDecoder) error {
	p := a.presence
	if err := p.next(); err != nil {
		return err
	}
	if p.rep != 0 {
		return fmt.Errorf("column %s: row does not start at repetition level 0", p.path)
	}
	if p.def < a.plan.def {
		a.pending++
		return nil
	}
	if a.pending > 0 {
		for _, l := range a.others {
			if err := l.skipNullRows(a.pending, a.plan.def); err != nil {
				return err
			}
		}
		a.pending = 0
	}
	return a.decode(d, a)
}

func (d *pqDecoder) decodeAdd(a *pqAction) error {
	f := a.fields
	if !a.presence.has() {
		return d.rowErr("add.path is null")
	}
	var ad *delta.Add
	if d.cfg.sink != nil {
		// The sink copies what it keeps.
		d.scratchAdd = delta.Add{}
		ad = &d.scratchAdd
	} else {
		ad = d.adds.alloc()
	}
	ad.Path = d.arena.str(a.presence.bytes())
	ad.PartitionValues = d.partitionValues(f[1], true)
	ad.Size = d.long(f[2])
	ad.ModificationTime = d.long(f[3])
	ad.DataChange = d.boolean(f[4])
	ad.Tags = d.strMap(f[6], d.intern)
	ad.DeletionVector = d.deletionVector(f[7])
	ad.BaseRowID = d.optLong(f[8])
	ad.DefaultRowCommitVersion = d.optLong(f[9])
	if d.prim(f[10]) {
		s := d.strs.alloc()
		*s = d.intern.str(f[10].leaf.bytes())
		ad.ClusteringProvider = s
	}
	if err := d.takeErr(); err != nil {
		return err
	}
	var ref StatsRef
	if d.stats != nil {
		s, r, err := d.stats.get(d.row)
		if err != nil {
			return err
		}
		ad.Stats, ref = s, r
	}
	if d.cfg.forceParsed && a.add.needParsed {
		ad.Stats, ref = "", StatsRef{}
	}
	if ad.Stats == "" && ref.Len == 0 && a.add.needParsed && d.parsed != nil {
		s, err := d.parsed.get(d.row)
		if err != nil {
			return err
		}
		ad.Stats = s
	}
	if d.cfg.sink != nil {
		d.inYield = true
		err := d.cfg.sink.Add(ad, ref)
		d.inYield = false
		return err
	}
	return d.emit(delta.Action{Add: ad})
}

func (d *pqDecoder) takeErr() error {
	err := d.ferr
	d.ferr = nil
	return err
}

func (d *pqDecoder) decodeRemove(a *pqAction) error {
	f := a.fields
	if !a.presence.has() {
		return d.rowErr("remove.path is null")
	}
	r := d.rems.alloc()
	r.Path = d.arena.str(a.presence.bytes())
	r.DeletionTimestamp = d.optLong(f[1])
	r.DataChange = d.boolean(f[2])
	r.ExtendedFileMetadata = d.optBool(f[3])
	r.PartitionValues = d.partitionValues(f[4], false)
	r.Size = d.optLong(f[5])
	r.Stats = d.str(f[6])
	r.Tags = d.strMap(f[7], d.intern)
	r.DeletionVector = d.deletionVector(f[8])
	r.BaseRowID = d.optLong(f[9])
	r.DefaultRowCommitVersion = d.optLong(f[10])
	if err := d.takeErr(); err != nil {
		return err
	}
	return d.emit(delta.Action{Remove: r})
}

func (d *pqDecoder) decodeMetadata(a *pqAction) error {
	f := a.fields
	in := newPQInterner() // metadata must not pin the decoder's intern table
	m := &delta.Metadata{}
	m.ID = d.ownStr(f[0])
	m.Name = d.optStr(f[1])
	m.Description = d.optStr(f[2])
	if ff := f[3]; ff != nil {
		m.Format.Provider = d.ownStr(ff.sub[0])
		m.Format.Options = d.strMap(ff.sub[1], in)
	}
	m.SchemaString = d.ownStr(f[4])
	m.PartitionColumns = d.strList(f[5])
	m.CreatedTime = d.ownOptLong(f[6])
	m.Configuration = d.strMap(f[7], in)
	if err := d.takeErr(); err != nil {
		return err
	}
	if m.Format.Options == nil {
		m.Format.Options = map[string]string{}
	}
	if m.Configuration == nil {
		m.Configuration = map[string]string{}
	}
	if m.PartitionColumns == nil {
		m.PartitionColumns = []string{}
	}
	return d.emit(delta.Action{Metadata: m})
}

func (d *pqDecoder) decodeProtocol(a *pqAction) error {
	f := a.fields
	p := &delta.Protocol{
		MinReaderVersion: int(d.long(f[0])),
		MinWriterVersion: int(d.long(f[1])),
		ReaderFeatures:   d.strList(f[2]),
		WriterFeatures:   d.strList(f[3]),
	}
	if err := d.takeErr(); err != nil {
		return err
	}
	return d.emit(delta.Action{Protocol: p})
}

func (d *pqDecoder) decodeTxn(a *pqAction) error {
	f := a.fields
	app := d.optStr(f[0])
	t := &delta.Txn{Version: d.long(f[1]), LastUpdated: d.ownOptLong(f[2])}
	if err := d.takeErr(); err != nil {
		return err
	}
	if app == nil {
		return d.rowErr("txn.appId is null")
	}
	t.AppID = *app
	return d.emit(delta.Action{Txn: t})
}

func (d *pqDecoder) decodeDomainMetadata(a *pqAction) error {
	f := a.fields
	dom := d.optStr(f[0])
	dm := &delta.DomainMetadata{Configuration: d.ownStr(f[1]), Removed: d.boolean(f[2])}
	if err := d.takeErr(); err != nil {
		return err
	}
	if dom == nil {
		return d.rowErr("domainMetadata.domain is null")
	}
	dm.Domain = *dom
	return d.emit(delta.Action{DomainMetadata: dm})
}

func (d *pqDecoder) decodeSidecar(a *pqAction) error {
	f := a.fields
	p := d.optStr(f[0])
	s := &delta.Sidecar{SizeInBytes: d.long(f[1]), ModificationTime: d.long(f[2]), Tags: d.strMap(f[3], newPQInterner())}
	if err := d.takeErr(); err != nil {
		return err
	}
	if p == nil {
		return d.rowErr("sidecar.path is null")
	}
	s.Path = *p
	return d.emit(delta.Action{Sidecar: s})
}

func (d *pqDecoder) decodeCheckpointMetadata(a *pqAction) error {
	f := a.fields
	c := &delta.CheckpointMetadata{Version: d.long(f[0]), Tags: d.strMap(f[1], newPQInterner())}
	if err := d.takeErr(); err != nil {
		return err
	}
	return d.emit(delta.Action{CheckpointMetadata: c})
}
