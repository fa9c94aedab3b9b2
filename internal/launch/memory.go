package launch

import (
	"context"
	"sync"
	"time"
)

// DefaultMaxRecords bounds a MemoryStore when its max is 0.
const DefaultMaxRecords = 100_000

// MemoryStore keeps records in this process (one replica, lost on
// restart). It holds at most its max records: when full, expired records
// are dropped first, then the one seen least recently.
type MemoryStore struct {
	mu  sync.Mutex
	m   map[Pseudonym]*memRecord
	max int
	now func() time.Time
}

type memRecord struct {
	r     Record
	until time.Time
}

// NewMemoryStore returns a MemoryStore of at most max records (0 means
// DefaultMaxRecords); now is the clock that expires them (nil: time.Now).
func NewMemoryStore(max int, now func() time.Time) *MemoryStore {
	if max <= 0 {
		max = DefaultMaxRecords
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{m: map[Pseudonym]*memRecord{}, max: max, now: now}
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, l Pseudonym) (Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mr, ok := s.m[l]
	if !ok || !s.now().Before(mr.until) {
		return Record{}, false, nil
	}
	return mr.r, true, nil
}

// Commit implements Store.
func (s *MemoryStore) Commit(_ context.Context, l Pseudonym, tee string, chip Pseudonym, prevSeq uint64, now time.Time, retention time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	mr, ok := s.m[l]
	if ok && !s.now().Before(mr.until) {
		delete(s.m, l)
		ok = false
	}
	var cur uint64
	if ok {
		cur = mr.r.Seq
	}
	if cur != prevSeq {
		return ErrConflict
	}
	if !ok {
		if len(s.m) >= s.max {
			s.evict()
		}
		mr = &memRecord{r: Record{Launch: l, TEE: tee, Chip: chip, FirstSeen: now}}
		s.m[l] = mr
	} else if mr.r.Chip.IsZero() {
		mr.r.Chip = chip
	} else if !chip.IsZero() && chip != mr.r.Chip {
		mr.r.Anomaly = true
	}
	mr.r.Seq = prevSeq + 1
	mr.r.LastSeen = now
	mr.until = now.Add(retention)
	return nil
}

// evict makes room for one record; s.mu is held.
func (s *MemoryStore) evict() {
	now := s.now()
	var oldest Pseudonym
	var oldestSeen time.Time
	for k, mr := range s.m {
		if !now.Before(mr.until) {
			delete(s.m, k)
			continue
		}
		if oldestSeen.IsZero() || mr.r.LastSeen.Before(oldestSeen) {
			oldest, oldestSeen = k, mr.r.LastSeen
		}
	}
	if len(s.m) >= s.max {
		delete(s.m, oldest)
	}
}

// List implements Store.
func (s *MemoryStore) List(_ context.Context, limit int) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []Record
	for _, mr := range s.m {
		if len(out) >= limit {
			break
		}
		if now.Before(mr.until) {
			out = append(out, mr.r)
		}
	}
	return out, nil
}
