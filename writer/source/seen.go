package source

// Seen is a set of event_ids, kept as 64-bit hashes: two different ids collide with probability
// about n²/2⁶⁵ (one in a million at six million ids), in which case the second is counted as a
// duplicate. It is an open-addressing table of uint64 (8 bytes a slot, at most half full), several
// times faster than a Go map at millions of ids. It is not safe for concurrent use.
type Seen struct {
	slots []uint64 // 0 is empty; the hash 0 is stored as 1
	n     int
}

// NewSeen returns an empty set.
func NewSeen() *Seen { return &Seen{slots: make([]uint64, 1<<12)} }

// Len is the number of ids in the set.
func (s *Seen) Len() int { return s.n }

// add inserts h and reports whether it was absent.
func (s *Seen) add(h uint64) bool {
	if h == 0 {
		h = 1
	}
	if 2*(s.n+1) > len(s.slots) {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := mix(h) & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return false
		case 0:
			s.slots[i] = h
			s.n++
			return true
		}
	}
}

func (s *Seen) grow() {
	old := s.slots
	s.slots = make([]uint64, 2*len(old))
	mask := uint64(len(s.slots) - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := mix(h) & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = h
	}
}

// mix spreads the bits of h (ids hashed elsewhere are already uniform; this guards a weak one).
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

// addBatch inserts hs in order and returns the indexes of those already present (in the set, or
// earlier in hs). Random probes into a table of many megabytes miss the cache; a first pass over
// each block only loads the slots the block will probe, so that the CPU overlaps those misses,
// and the inserting pass then finds them cached.
func (s *Seen) addBatch(hs []uint64) []int {
	var dups []int
	const block = 512
	for start := 0; start < len(hs); start += block {
		end := min(start+block, len(hs))
		for 2*(s.n+end-start) > len(s.slots) {
			s.grow()
		}
		mask := uint64(len(s.slots) - 1)
		var sink uint64
		for _, h := range hs[start:end] {
			sink += s.slots[mix(h)&mask]
		}
		seenSink = sink
		for i, h := range hs[start:end] {
			if !s.add(h) {
				dups = append(dups, start+i)
			}
		}
	}
	return dups
}

// seenSink keeps the touching loads of addBatch from being optimised away.
var seenSink uint64
