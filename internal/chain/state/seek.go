package state

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/cockroachdb/pebble"
)

// Seeker is a View that can begin a forward walk at a key instead of at
// the start of a prefix: block work that resumes where the last block
// stopped (a cursor) then costs what it examines, not what lies before.
type Seeker interface {
	View
	// IterateFrom calls fn for each key with the given prefix that is at
	// or after start, in key order, until fn returns false.
	IterateFrom(prefix, start []byte, fn func(key, value []byte) bool) error
}

var (
	_ Seeker = (*Store)(nil)
	_ Seeker = (*Snapshot)(nil)
	_ Seeker = (*Cache)(nil)
)

// IterateFrom walks v's keys under prefix from start on (see Seeker). A
// View that cannot seek is walked from the prefix's start, skipping the
// keys before start.
func IterateFrom(v View, prefix, start []byte, fn func(key, value []byte) bool) error {
	if s, ok := v.(Seeker); ok {
		return s.IterateFrom(prefix, start, fn)
	}
	return v.Iterate(prefix, false, func(k, val []byte) bool {
		if bytes.Compare(k, start) < 0 {
			return true
		}
		return fn(k, val)
	})
}

// lower is where a walk of prefix from start begins.
func lower(prefix, start []byte) []byte {
	if bytes.Compare(start, prefix) > 0 {
		return start
	}
	return prefix
}

// IterateFrom implements Seeker.
func (s *Store) IterateFrom(prefix, start []byte, fn func(key, value []byte) bool) error {
	return iterateFrom(s.db, prefix, start, fn)
}

// IterateFrom implements Seeker.
func (s *Snapshot) IterateFrom(prefix, start []byte, fn func(key, value []byte) bool) error {
	return iterateFrom(s.snap, prefix, start, fn)
}

func iterateFrom(r pebble.Reader, prefix, start []byte, fn func(key, value []byte) bool) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower(prefix, start), UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("state: iterate: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	return it.Error()
}

// IterateFrom implements Seeker over the cache's writes layered on its
// parent's keys, as Iterate does.
func (c *Cache) IterateFrom(prefix, start []byte, fn func(key, value []byte) bool) error {
	pv, ok := c.parent.(View)
	if !ok {
		return fmt.Errorf("state: iterate: parent %T cannot iterate", c.parent)
	}
	from := string(lower(prefix, start))
	var own []string
	for k := range c.writes {
		if strings.HasPrefix(k, string(prefix)) && k >= from {
			own = append(own, k)
		}
	}
	sort.Strings(own)
	i, stopped := 0, false
	emitOwn := func() bool { // emits own[i]; false when fn asked to stop
		k := own[i]
		i++
		if v := c.writes[k]; v != nil {
			return fn([]byte(k), v)
		}
		return true
	}
	err := IterateFrom(pv, prefix, start, func(key, value []byte) bool {
		for i < len(own) && own[i] < string(key) {
			if !emitOwn() {
				stopped = true
				return false
			}
		}
		if i < len(own) && own[i] == string(key) {
			if !emitOwn() {
				stopped = true
				return false
			}
			return true
		}
		if !fn(key, value) {
			stopped = true
			return false
		}
		return true
	})
	if err != nil || stopped {
		return err
	}
	for i < len(own) {
		if !emitOwn() {
			return nil
		}
	}
	return nil
}
