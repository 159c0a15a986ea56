package mitm

import (
	"container/list"
	"sync"
	"time"

	"github.com/cafilprox/cafilprox/classifiers"
)

// factsMemo keeps recently parsed version facts in memory: an npm install
// asks for hundreds of tarballs, and re-reading and parsing a multi-MB
// packument for each would dominate the cost of a cache hit. Entries live
// for a short TTL (bounded by the metadata TTL), so new versions and yanks
// still show up promptly. Bounded LRU.
type factsMemo struct {
	mu    sync.Mutex
	max   int
	lru   *list.List
	byKey map[string]*list.Element
}

type factsEntry struct {
	key     string
	md      *classifiers.Metadata
	expires time.Time
}

func newFactsMemo(max int) *factsMemo {
	return &factsMemo{max: max, lru: list.New(), byKey: map[string]*list.Element{}}
}

func (m *factsMemo) get(key string, now time.Time) (*classifiers.Metadata, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.byKey[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*factsEntry)
	if now.After(e.expires) {
		m.lru.Remove(el)
		delete(m.byKey, key)
		return nil, false
	}
	m.lru.MoveToFront(el)
	return e.md, true
}

func (m *factsMemo) put(key string, md *classifiers.Metadata, expires time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.byKey[key]; ok {
		el.Value = &factsEntry{key: key, md: md, expires: expires}
		m.lru.MoveToFront(el)
		return
	}
	m.byKey[key] = m.lru.PushFront(&factsEntry{key: key, md: md, expires: expires})
	for m.lru.Len() > m.max {
		old := m.lru.Back()
		m.lru.Remove(old)
		delete(m.byKey, old.Value.(*factsEntry).key)
	}
}
