package mitm

import (
	"container/list"
	"sync"
	"time"
)

// ttlCache is a small LRU whose entries also expire, bounded by the total
// cost of its entries. The pipeline keeps two: parsed version facts (an npm
// install asks for hundreds of tarballs, and re-parsing a multi-MB packument
// for each would dominate a cache hit) and filtered metadata responses (a
// hit then costs no read, parse or filter at all). Entries live for seconds,
// so new versions, yanks and cooldown boundaries still show up promptly.
type ttlCache[V any] struct {
	mu     sync.Mutex
	budget int64
	used   int64
	lru    *list.List
	byKey  map[string]*list.Element
}

type ttlEntry[V any] struct {
	key     string
	v       V
	cost    int64
	expires time.Time
}

func newTTLCache[V any](budget int64) *ttlCache[V] {
	return &ttlCache[V]{budget: budget, lru: list.New(), byKey: map[string]*list.Element{}}
}

func (c *ttlCache[V]) get(key string, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.byKey[key]
	if !ok {
		return zero, false
	}
	e := el.Value.(*ttlEntry[V])
	if now.After(e.expires) {
		c.remove(el)
		return zero, false
	}
	c.lru.MoveToFront(el)
	return e.v, true
}

func (c *ttlCache[V]) put(key string, v V, cost int64, expires time.Time) {
	if cost > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.remove(el)
	}
	c.byKey[key] = c.lru.PushFront(&ttlEntry[V]{key: key, v: v, cost: cost, expires: expires})
	c.used += cost
	for c.used > c.budget {
		c.remove(c.lru.Back())
	}
}

func (c *ttlCache[V]) remove(el *list.Element) {
	e := el.Value.(*ttlEntry[V])
	c.lru.Remove(el)
	delete(c.byKey, e.key)
	c.used -= e.cost
}
