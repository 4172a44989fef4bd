package checkpoint

import (
	"fmt"
	"sync"
	"testing"

	"github.com/lakehouse/lake/internal/delta"
)

// recordingSink is an AddSink that keeps what the AddSink contract lets it keep (the values of
// each add, never the *Add) and checks the order of calls.
type recordingSink struct {
	t       *testing.T
	rows    int64
	rowsN   int
	adds    []delta.Add // copies of the values; Stats from the writers
	ptr     *delta.Add  // the one *Add the decoder reuses
	mu      sync.Mutex  // guards the writers' blocks (Put runs on another goroutine)
	blocks  [][]byte
	writers []*recordingWriter
}

type recordingWriter struct {
	s      *recordingSink
	block  uint32
	closed bool
	puts   int
}

func (s *recordingSink) Rows(n int64) {
	if len(s.adds) > 0 || s.rowsN > 0 {
		s.t.Errorf("Rows(%d) after %d adds and %d Rows calls", n, len(s.adds), s.rowsN)
	}
	s.rows, s.rowsN = n, s.rowsN+1
}

func (s *recordingSink) Add(a *delta.Add, ref StatsRef) error {
	if s.ptr != nil && s.ptr != a {
		s.t.Errorf("add %s: a new *Add, want the one reused", a.Path)
	}
	s.ptr = a
	c := *a
	if ref.Len > 0 {
		if a.Stats != "" {
			s.t.Errorf("add %s: Stats %q and a ref", a.Path, a.Stats)
		}
		s.mu.Lock()
		c.Stats = string(s.blocks[ref.Block][ref.Off : ref.Off+ref.Len])
		s.mu.Unlock()
	}
	s.adds = append(s.adds, c)
	return nil
}

func (s *recordingSink) NewStatsWriter() StatsWriter {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := &recordingWriter{s: s, block: uint32(len(s.blocks))}
	s.blocks = append(s.blocks, nil)
	s.writers = append(s.writers, w)
	return w
}

func (w *recordingWriter) Put(b []byte) StatsRef {
	if w.closed {
		w.s.t.Error("Put after Close")
	}
	if len(b) == 0 {
		w.s.t.Error("Put of empty stats")
	}
	w.puts++
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	off := len(w.s.blocks[w.block])
	w.s.blocks[w.block] = append(w.s.blocks[w.block], b...)
	clear(b) // the bytes are only valid during the call: the decoder must not read them again
	return StatsRef{Block: w.block, Off: uint32(off), Len: uint32(len(b))}
}

func (w *recordingWriter) Close() {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.closed {
		w.s.t.Error("Close twice")
	}
	w.closed = true
}

// TestDecodeAddSink holds the AddSink contract: adds go to the sink (not to yield) through one
// reused *Add whose values may be kept, their stats through one StatsWriter per row group
// (closed before Decode returns), and the result equals a plain decode.
func TestDecodeAddSink(t *testing.T) {
	var acts []delta.Action
	acts = append(acts, delta.Action{Protocol: &delta.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}},
		delta.Action{Metadata: &delta.Metadata{ID: "m"}})
	for i := range 1000 {
		day := fmt.Sprintf("2024-01-%02d", i%28+1)
		a := &delta.Add{Path: fmt.Sprintf("day=%s/part-%05d.parquet", day, i), PartitionValues: map[string]*string{"day": &day},
			Size: int64(i + 1), ModificationTime: int64(i)}
		if i%5 != 0 {
			a.Stats = fmt.Sprintf(`{"numRecords":%d}`, i)
		}
		if i%100 == 3 {
			a.Tags = map[string]string{"k": "v"}
		}
		acts = append(acts, delta.Action{Add: a})
	}
	acts = append(acts, delta.Action{Remove: &delta.Remove{Path: "gone", DeletionTimestamp: pqI64(1)}})
	data := mustEncode(t, acts, WithRowGroupRows(128))
	want, err := pqDecodeBytes(data)
	if err != nil {
		t.Fatal(err)
	}

	sink := &recordingSink{t: t}
	got, err := pqDecodeBytes(data, WithAddSink(sink))
	if err != nil {
		t.Fatal(err)
	}
	if sink.rowsN != 1 || sink.rows != int64(len(acts)) {
		t.Fatalf("Rows called %d times with %d, want once with %d", sink.rowsN, sink.rows, len(acts))
	}
	if len(sink.writers) != 8 {
		t.Errorf("%d stats writers, want one per row group (8)", len(sink.writers))
	}
	for i, w := range sink.writers {
		if !w.closed {
			t.Errorf("stats writer %d not closed when Decode returned", i)
		}
	}
	var wantAdds []delta.Add
	for _, a := range want {
		if a.Add != nil {
			wantAdds = append(wantAdds, *a.Add)
		}
	}
	for _, a := range got {
		if a.Add != nil {
			t.Fatalf("add %s yielded, want it in the sink", a.Add.Path)
		}
	}
	if len(got)+len(sink.adds) != len(want) {
		t.Fatalf("%d yielded and %d in the sink, want %d actions", len(got), len(sink.adds), len(want))
	}
	var gotActs, wantActs []delta.Action
	for i := range sink.adds {
		gotActs = append(gotActs, delta.Action{Add: &sink.adds[i]})
		wantActs = append(wantActs, delta.Action{Add: &wantAdds[i]})
	}
	pqAssertSame(t, gotActs, wantActs)
}
