package challenge

import (
	"context"
	"sync"
	"time"
)

// MemoryStore is a Store in this process's memory, for one replica. Expired
// records are dropped as new ones arrive. Its records begin when it is
// made (NewMemoryStore), to the second below: a record issued before is
// refused with ErrIssuedBeforeRecords, so that a restarted process with
// the same keys does not accept once more what it accepted before. Its
// zero value is not usable; use NewMemoryStore.
type MemoryStore struct {
	mu      sync.Mutex
	now     func() time.Time
	from    time.Time
	until   map[string]time.Time
	sweepAt time.Time
}

// NewMemoryStore returns an empty MemoryStore whose records begin now, to
// the whole second below (the resolution of a token's iat); now nil means
// time.Now.
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, from: now().Truncate(time.Second), until: make(map[string]time.Time)}
}

// Consume implements Store.
func (m *MemoryStore) Consume(_ context.Context, id string, issued, until time.Time) (bool, error) {
	if issued.Before(m.from) {
		return false, ErrIssuedBeforeRecords
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if now.After(m.sweepAt) {
		for k, t := range m.until {
			if now.After(t) {
				delete(m.until, k)
			}
		}
		m.sweepAt = now.Add(10 * time.Second)
	}
	if t, ok := m.until[id]; ok && !now.After(t) {
		return false, nil
	}
	m.until[id] = until
	return true, nil
}

// Len returns how many records are held.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.until)
}
