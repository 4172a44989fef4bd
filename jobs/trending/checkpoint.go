package trending

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"fmt"

	"gocloud.dev/gcerrors"
)

// A follower's checkpoint is the detector's whole state after processing a source version: one
// gob file at PREFIX/trending/_follow_state/<hash of the appId>.gob, uploaded whole (an atomic
// put on every store), written after the round's output commits.
//
// Why a file beside the output, not a table: the state is read and written whole, by one
// follower, and is only an accelerator. Exactness does not depend on it: a checkpoint at
// version V plus the files of versions V+1..N is the state at N (the detector is a function of
// the events and their arrival by version), and the outputs' txn decides which windows are
// committed, so a checkpoint older than the last commit (a crash between the commit and the
// checkpoint) only means re-reading a few commits, and a missing or unreadable one means
// rebuilding from a full scan. A table would add a schema and a commit per round for nothing.
// The folder starts with "_", which Delta readers and vacuum leave alone.

const checkpointFormat = 1

type checkpoint struct {
	Format        int
	AppID         string
	SourceVersion int64
	Rows, Skipped int64

	Watermark, Next, Seen, Late, Events int64
	Started                             bool
	Active                              int
	Disp, Delta2                        float64
	SiteNum, SiteDen                    float64
	SiteDayA, SiteDayB                  []float64
	SiteWeekA, SiteWeekB                []float64

	ItemIDs  []string
	Num, Den []float64
	Seas     [][]float32
	Cusum    []float32
	First    []int64
	Cat      []int32
	// Count modes other than users (absent from older checkpoints, which were all users: gob
	// leaves them zero). The mode itself is in the appId.
	PhiA, PhiB          []float32
	ValueNull, ValueNeg int64
	DispN, DeltaN       int64 // absent from older checkpoints: 0, which trending-v1 does not read

	CatIDs               []string
	CatNum, CatDen       []float64
	CatDayA, CatDayB     []float64
	CatWeekA, CatWeekB   []float64
	CatItems             []int32
	OpenK                []int64
	OpenKeys, OpenValues [][]uint64
	OpenCats             [][]int32 // item, category, item, category, ...
}

func checkpointKey(appID string) string {
	h := sha256.Sum256([]byte(appID))
	return "_follow_state/" + hex.EncodeToString(h[:8]) + ".gob"
}

func (d *Detector) checkpoint(appID string, version, rows, skipped int64) ([]byte, error) {
	c := checkpoint{Format: checkpointFormat, AppID: appID, SourceVersion: version, Rows: rows, Skipped: skipped,
		Watermark: d.watermark, Next: d.next, Seen: d.seen, Late: d.late, Events: d.events, Started: d.started, Active: d.active,
		Disp: d.disp, Delta2: d.delta2, SiteNum: d.siteNum, SiteDen: d.siteDen,
		SiteDayA: d.siteDayA, SiteDayB: d.siteDayB, SiteWeekA: d.siteWeekA, SiteWeekB: d.siteWeekB,
		ItemIDs: d.itemIDs, Num: d.items.num, Den: d.items.den, Seas: d.items.seas,
		Cusum: d.items.cusum, First: d.items.first, Cat: d.items.cat, PhiA: d.items.phiA, PhiB: d.items.phiB,
		ValueNull: d.valueNull, ValueNeg: d.valueNeg, DispN: d.dispN, DeltaN: d.deltaN,
		CatIDs: d.catIDs, CatNum: d.cats.num, CatDen: d.cats.den, CatDayA: d.cats.dayA, CatDayB: d.cats.dayB,
		CatWeekA: d.cats.wkA, CatWeekB: d.cats.wkB, CatItems: d.cats.items}
	for k, acc := range d.open {
		keys, vals := make([]uint64, len(acc.pairs)), make([]uint64, len(acc.pairs))
		for i, p := range acc.pairs {
			keys[i], vals[i] = p.key, p.val
		}
		var cats []int32
		for i, ci := range acc.cats {
			cats = append(cats, i, ci)
		}
		c.OpenK, c.OpenKeys, c.OpenValues = append(c.OpenK, k), append(c.OpenKeys, keys), append(c.OpenValues, vals)
		c.OpenCats = append(c.OpenCats, cats)
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// restore loads a checkpoint into d, a fresh detector with the same parameters. It returns
// the checkpoint's source version and row counts.
func (d *Detector) restore(data []byte, appID string) (version, rows, skipped int64, err error) {
	var c checkpoint
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&c); err != nil {
		return 0, 0, 0, fmt.Errorf("checkpoint does not decode: %w", err)
	}
	n, nc := len(c.ItemIDs), len(c.CatIDs)
	switch {
	case c.Format != checkpointFormat:
		return 0, 0, 0, fmt.Errorf("checkpoint format %d, want %d", c.Format, checkpointFormat)
	case c.AppID != appID:
		return 0, 0, 0, fmt.Errorf("checkpoint of %s, want %s", c.AppID, appID)
	case len(c.Num) != n || len(c.Den) != n || len(c.Seas) != d.itemPhases ||
		len(c.Cusum) != n || len(c.First) != n || len(c.Cat) != n || len(c.CatNum) != nc || len(c.CatDen) != nc ||
		len(c.CatDayA) != nc*d.dayPhases || len(c.CatDayB) != nc*d.dayPhases || len(c.CatWeekA) != nc*d.weekPhases ||
		len(c.CatWeekB) != nc*d.weekPhases || len(c.CatItems) != nc || len(c.SiteDayA) != d.dayPhases ||
		len(c.SiteDayB) != d.dayPhases || len(c.SiteWeekA) != d.weekPhases || len(c.SiteWeekB) != d.weekPhases ||
		len(c.OpenKeys) != len(c.OpenK) || len(c.OpenValues) != len(c.OpenK) || len(c.OpenCats) != len(c.OpenK):
		return 0, 0, 0, fmt.Errorf("checkpoint is inconsistent (%d items, %d categories)", n, nc)
	}
	if d.itemPhi && (len(c.PhiA) != n || len(c.PhiB) != n) || !d.itemPhi && (len(c.PhiA) != 0 || len(c.PhiB) != 0) {
		return 0, 0, 0, fmt.Errorf("checkpoint is inconsistent: overdispersion of %d items for %d", len(c.PhiA), n)
	}
	for _, row := range c.Seas {
		if len(row) != 2*n {
			return 0, 0, 0, fmt.Errorf("checkpoint is inconsistent: a season of %d values for %d items", len(row), n)
		}
	}
	for _, ci := range c.Cat {
		if ci < -1 || int(ci) >= nc {
			return 0, 0, 0, fmt.Errorf("checkpoint is inconsistent: category %d of %d", ci, nc)
		}
	}
	d.watermark, d.next, d.seen, d.late, d.events, d.started, d.active = c.Watermark, c.Next, c.Seen, c.Late, c.Events, c.Started, c.Active
	d.disp, d.delta2, d.siteNum, d.siteDen = c.Disp, c.Delta2, c.SiteNum, c.SiteDen
	d.siteDayA, d.siteDayB, d.siteWeekA, d.siteWeekB = c.SiteDayA, c.SiteDayB, c.SiteWeekA, c.SiteWeekB
	d.itemIDs = c.ItemIDs
	d.itemIdx = make(map[string]int32, n)
	for i, id := range c.ItemIDs {
		d.itemIdx[id] = int32(i)
	}
	d.items = itemState{num: c.Num, den: c.Den, seas: c.Seas, cusum: c.Cusum, first: c.First, cat: c.Cat, phiA: c.PhiA, phiB: c.PhiB}
	d.valueNull, d.valueNeg, d.dispN, d.deltaN = c.ValueNull, c.ValueNeg, c.DispN, c.DeltaN
	d.catIDs = c.CatIDs
	d.catIdx = make(map[string]int32, nc)
	for i, id := range c.CatIDs {
		d.catIdx[id] = int32(i)
	}
	d.cats = catState{num: c.CatNum, den: c.CatDen, dayA: c.CatDayA, dayB: c.CatDayB, wkA: c.CatWeekA, wkB: c.CatWeekB, items: c.CatItems}
	d.open = map[int64]*windowAcc{}
	for j, k := range c.OpenK {
		if len(c.OpenKeys[j]) != len(c.OpenValues[j]) {
			return 0, 0, 0, fmt.Errorf("checkpoint is inconsistent: window %d", k)
		}
		acc := &windowAcc{pairs: make([]pair, len(c.OpenKeys[j]))}
		for i := range acc.pairs {
			acc.pairs[i] = pair{c.OpenKeys[j][i], c.OpenValues[j][i]}
			item := acc.pairs[i].val >> 32 // CountUsers: item and weight; else: item and amount
			if !d.dedup {
				item = acc.pairs[i].key
			}
			if item >= uint64(n) {
				return 0, 0, 0, fmt.Errorf("checkpoint is inconsistent: item %d of %d", item, n)
			}
		}
		cats := c.OpenCats[j]
		if len(cats)%2 != 0 {
			return 0, 0, 0, fmt.Errorf("checkpoint is inconsistent: window %d categories", k)
		}
		for x := 0; x < len(cats); x += 2 {
			if cats[x] < 0 || int(cats[x]) >= n || cats[x+1] < 0 || int(cats[x+1]) >= nc {
				return 0, 0, 0, fmt.Errorf("checkpoint is inconsistent: window %d categories", k)
			}
			if acc.cats == nil {
				acc.cats = map[int32]int32{}
			}
			acc.cats[cats[x]] = cats[x+1]
		}
		d.open[k] = acc
	}
	d.lastAcc = nil
	return c.SourceVersion, c.Rows, c.Skipped, nil
}

// isNotFound reports whether err is a missing object.
func isNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }
