package txlog

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"unsafe"

	"github.com/klauspost/compress/s2"

	"github.com/lakehouse/lake/txlog/internal/checkpoint"
)

// A snapshot of a large table holds a million adds, and their JSON stats are most of its memory
// (a few hundred bytes each against about 200 for the rest of an add). The adds read from a
// checkpoint therefore keep their stats out of the Add, in statsStore: the stats of consecutive
// adds are concatenated into blocks of statsBlockSize bytes and each full block is compressed
// with S2. The stats come back when an add is handed out (AllFiles, Files), one block at a time.

// statsBlockSize is the raw size of a stats block.
const statsBlockSize = 256 << 10

// statsRef locates one add's stats in a statsStore: Block is the block's index, Off the offset
// in the raw block; Len == 0 means the stats are in the Add. It is the checkpoint codec's
// StatsRef: the decoder hands refs from a statsBuilder to the load's sink (checkpointSink).
type statsRef = checkpoint.StatsRef

// statsStore holds compressed stats blocks. It is filled during one snapshot load and read-only
// afterwards; snapshots derived by Update share it.
type statsStore struct {
	mu     sync.Mutex
	blocks [][]byte // S2-compressed
}

// statsBuilder fills one block at a time; each decoding goroutine has its own. It is the
// checkpoint decoder's StatsWriter for one row group's add.stats column.
type statsBuilder struct {
	st      *statsStore
	raw     []byte
	scratch []byte
	block   uint32 // index of raw's block in st.blocks, valid once reserved
	have    bool
}

// Put copies s into the current block (a new one when it is full) and returns its place.
func (b *statsBuilder) Put(s []byte) statsRef {
	if len(s) == 0 {
		return statsRef{}
	}
	if b.have && len(b.raw)+len(s) > statsBlockSize {
		b.Close()
	}
	if !b.have {
		b.st.mu.Lock()
		b.block = uint32(len(b.st.blocks))
		b.st.blocks = append(b.st.blocks, nil)
		b.st.mu.Unlock()
		b.have = true
		if b.raw == nil {
			b.raw = make([]byte, 0, statsBlockSize)
		}
	}
	off := len(b.raw)
	b.raw = append(b.raw, s...)
	return statsRef{Block: b.block, Off: uint32(off), Len: uint32(len(s))}
}

// Close compresses the current block into the store.
func (b *statsBuilder) Close() {
	if !b.have {
		return
	}
	// Encode sizes its output for the worst case: compress into scratch, keep an exact copy.
	b.scratch = s2.Encode(b.scratch[:cap(b.scratch)], b.raw)
	enc := slices.Clone(b.scratch)
	b.st.mu.Lock()
	b.st.blocks[b.block] = enc
	b.st.mu.Unlock()
	b.raw = b.raw[:0]
	b.have = false
}

// block decompresses block i into dst (nil: new memory, which strings may alias).
func (st *statsStore) block(i uint32, dst []byte) ([]byte, error) {
	st.mu.Lock()
	enc := st.blocks[i]
	st.mu.Unlock()
	raw, err := s2.Decode(dst[:cap(dst)], enc)
	if err != nil {
		return nil, fmt.Errorf("stats block %d: %w", i, err)
	}
	return raw, nil
}

// compressedSize is the memory the store holds.
func (st *statsStore) compressedSize() int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	var n int64
	for _, b := range st.blocks {
		n += int64(len(b))
	}
	return n
}

// fileEntry is an active file. Adds from commits, and the rare checkpoint adds with tags, a
// deletion vector, row tracking or clustering, are kept whole (add); the other checkpoint adds
// are kept in the entry itself, which is half the size of an Add, with their stats in the
// statsStore. An entry with neither add nor path is a hole.
type fileEntry struct {
	add             *Add
	path            string
	partitionValues map[string]*string
	size, modTime   int64
	stats           statsRef
	dataChange      bool
}

// compactEntry is the entry of a checkpoint add whose stats are at ref: compact when the add
// has only the common fields, else the add itself (which the decoder gave up).
func compactEntry(a *Add, ref statsRef) fileEntry {
	if a.Tags == nil && a.DeletionVector == nil && a.BaseRowID == nil && a.DefaultRowCommitVersion == nil &&
		a.ClusteringProvider == nil {
		return fileEntry{path: a.Path, partitionValues: a.PartitionValues, size: a.Size, modTime: a.ModificationTime,
			stats: ref, dataChange: a.DataChange}
	}
	c := *a
	return fileEntry{add: &c, stats: ref}
}

// checkpointSink is the checkpoint decoder's AddSink during a snapshot load: it appends the
// adds to files (compactly, see compactEntry) with their stats in files.stats, and feeds the
// indexer. The decoder reuses the *Add it passes; compactEntry keeps its field values (fresh
// strings, shared read-only maps), and copies the Add when it keeps it whole.
type checkpointSink struct {
	files *fileTable
	ix    *entryIndexer
}

var (
	_ checkpoint.AddSink     = (*checkpointSink)(nil)
	_ checkpoint.StatsWriter = (*statsBuilder)(nil)
)

// Rows sizes the table once: a file's rows are an upper bound on its adds.
func (c *checkpointSink) Rows(n int64) {
	if n > 0 && n < 1<<31 {
		c.files.entries = slices.Grow(c.files.entries, int(n))
	}
}

func (c *checkpointSink) Add(a *Add, ref statsRef) error {
	c.files.entries = append(c.files.entries, compactEntry(a, ref))
	c.ix.feed(c.files.entries)
	return nil
}

func (c *checkpointSink) NewStatsWriter() checkpoint.StatsWriter {
	return &statsBuilder{st: c.files.stats}
}

func (e *fileEntry) live() bool { return e.add != nil || e.path != "" }

// key is the entry's FileKey.
func (e *fileEntry) key() string {
	if e.add != nil {
		return FileKey(e.add.Path, e.add.DeletionVector)
	}
	return FileKey(e.path, nil)
}

// fileTable is the active files of a snapshot in load order (checkpoint order, then commit
// order), with an index by FileKey. Removing a file leaves a hole (add == nil) that compact
// squeezes out once holes are half the table.
type fileTable struct {
	entries []fileEntry
	index   map[string]int32
	stats   *statsStore // nil when no add keeps its stats out
}

func newFileTable(capacity int) *fileTable {
	return &fileTable{index: make(map[string]int32, capacity)}
}

func (t *fileTable) len() int { return len(t.index) }

// has reports whether a file is active under key.
func (t *fileTable) has(key string) bool {
	_, ok := t.index[key]
	return ok
}

// put adds or replaces the file under key.
func (t *fileTable) put(key string, e fileEntry) {
	if i, ok := t.index[key]; ok {
		t.entries[i] = e
		return
	}
	t.index[key] = int32(len(t.entries))
	t.entries = append(t.entries, e)
}

// remove drops the file under key, if any.
func (t *fileTable) remove(key string) {
	i, ok := t.index[key]
	if !ok {
		return
	}
	delete(t.index, key)
	t.entries[i] = fileEntry{}
	if holes := len(t.entries) - len(t.index); holes > 1024 && holes > len(t.index) {
		t.compact()
	}
}

// dropShadowed makes holes of the entries the index does not point at (an earlier add of a key
// added again).
func (t *fileTable) dropShadowed() {
	live := make([]bool, len(t.entries))
	for _, i := range t.index {
		live[i] = true
	}
	for i := range t.entries {
		if !live[i] {
			t.entries[i] = fileEntry{}
		}
	}
}

// compact removes the holes, keeping the order.
func (t *fileTable) compact() {
	remap := make([]int32, len(t.entries))
	n := int32(0)
	for i, e := range t.entries {
		if e.live() {
			remap[i] = n
			t.entries[n] = e
			n++
		}
	}
	clear(t.entries[n:])
	t.entries = t.entries[:n]
	for k, i := range t.index {
		t.index[k] = remap[i]
	}
}

// clone returns a copy that can be changed without touching t (the stats store is shared: it is
// never written after the load that filled it).
func (t *fileTable) clone() *fileTable {
	return &fileTable{entries: slices.Clone(t.entries), index: maps.Clone(t.index), stats: t.stats}
}

// each calls fn with every active add, in load order, its stats in place. Adds whose stats were
// kept out are new copies, allocated a block at a time, whose Stats alias the decompressed block;
// with reuse, they are one Add and one block buffer overwritten as the loop goes on (fn must not
// keep them).
func (t *fileTable) each(fn func(*Add) bool, reuse bool) {
	var (
		cur    = ^uint32(0)
		raw    []byte
		copies []Add
	)
	for i := range t.entries {
		e := &t.entries[i]
		if !e.live() {
			continue
		}
		a := e.add
		if a == nil || e.stats.Len > 0 {
			if e.stats.Len > 0 && e.stats.Block != cur {
				var dst []byte
				if reuse {
					dst = raw
				}
				b, err := t.stats.block(e.stats.Block, dst)
				if err != nil {
					// The store is this process's own memory: a block that does not decode is a bug.
					panic(fmt.Sprintf("txlog: %v", err))
				}
				raw, cur = b, e.stats.Block
			}
			if len(copies) == 0 {
				n := 256
				if reuse {
					n = 1
				}
				copies = make([]Add, n)
			}
			c := &copies[0]
			if reuse {
				*c = Add{}
			} else {
				copies = copies[1:]
			}
			if a != nil {
				*c = *a
			} else {
				c.Path, c.PartitionValues, c.Size, c.ModificationTime, c.DataChange = e.path, e.partitionValues, e.size, e.modTime, e.dataChange
			}
			if e.stats.Len > 0 {
				c.Stats = unsafe.String(&raw[e.stats.Off], int(e.stats.Len))
			}
			a = c
		}
		if !fn(a) {
			return
		}
	}
}

// entryIndexer builds the index of a fileTable whose entries are being appended, in its own
// goroutine, a batch of entries at a time. An appended entry is never written again while the
// indexer runs, so reading a batch through the slice it was sent with is safe even after the
// table's slice is reallocated.
type entryIndexer struct {
	sent  int // entries handed over so far
	ch    chan indexBatch
	done  chan struct{}
	index map[string]int32
}

type indexBatch struct {
	base int
	es   []fileEntry
}

const indexBatchSize = 8192

// feed hands over the entries appended since the last batch once there are enough.
func (x *entryIndexer) feed(entries []fileEntry) {
	if len(entries)-x.sent < indexBatchSize {
		return
	}
	x.send(entries)
}

func (x *entryIndexer) send(entries []fileEntry) {
	if x.ch == nil {
		x.index = make(map[string]int32, cap(entries)+cap(entries)/8+64)
		x.ch = make(chan indexBatch, 4)
		x.done = make(chan struct{})
		go func() {
			defer close(x.done)
			for b := range x.ch {
				for i := range b.es {
					x.index[b.es[i].key()] = int32(b.base + i)
				}
			}
		}()
	}
	x.ch <- indexBatch{base: x.sent, es: entries[x.sent:len(entries):len(entries)]}
	x.sent = len(entries)
}

// finish indexes the rest and returns the index.
func (x *entryIndexer) finish(entries []fileEntry) map[string]int32 {
	if x.ch == nil {
		x.index = make(map[string]int32, len(entries)+len(entries)/8+64)
		for i := range entries {
			x.index[entries[i].key()] = int32(i)
		}
		return x.index
	}
	if len(entries) > x.sent {
		x.send(entries)
	}
	x.stop()
	return x.index
}

// stop ends the goroutine (idempotent).
func (x *entryIndexer) stop() {
	if x.ch != nil {
		close(x.ch)
		<-x.done
		x.ch = nil
	}
}
