package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStoreReadsMatchPebbleThroughCommits: the in-memory copy of hot
// values must never differ from what Pebble holds, across sets, deletes,
// empty values and evictions.
func TestStoreReadsMatchPebbleThroughCommits(t *testing.T) {
	s, err := OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.hot = newHotSet(16) // far fewer than the keys used: evictions happen
	rng := rand.New(rand.NewPCG(3, 4))
	want := map[string][]byte{}
	key := func() []byte { return fmt.Appendf(nil, "bank/b/%02d", rng.IntN(40)) }
	for height := int64(1); height <= 300; height++ {
		var writes []KV
		for range rng.IntN(8) {
			k := key()
			var v []byte
			switch rng.IntN(4) {
			case 0: // delete
			case 1:
				v = []byte{}
			default:
				v = fmt.Appendf(nil, "v%d", rng.Uint32())
			}
			writes = append(writes, KV{Key: k, Value: v})
			if len(v) == 0 {
				delete(want, string(k))
			} else {
				want[string(k)] = v
			}
		}
		if err := s.Commit(height, time.Unix(height, 0), []byte{1}, "", writes); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			k := key()
			got, err := s.Get(k)
			if err != nil {
				t.Fatal(err)
			}
			direct, _ := s.get(k)
			if !bytes.Equal(got, want[string(k)]) || !bytes.Equal(got, direct) {
				t.Fatalf("height %d key %s: Get %q, Pebble %q, expected %q", height, k, got, direct, want[string(k)])
			}
			if got != nil {
				got[0] ^= 0xff // the caller owns it: the next read is unaffected
			}
		}
		if len(s.hot.vals) > 16 {
			t.Fatalf("hot set holds %d values, max 16", len(s.hot.vals))
		}
	}
}

// TestHotSetIgnoresAReadOverlappingACommit: a value read from Pebble
// before a commit must not be kept after it.
func TestHotSetIgnoresAReadOverlappingACommit(t *testing.T) {
	h := newHotSet(10)
	k := []byte("bank/b/x")
	_, ok, gen := h.get(k)
	if ok {
		t.Fatal("empty set knows a key")
	}
	h.commit([]KV{{Key: k, Value: []byte("new")}})
	h.fill(k, []byte("old"), gen) // the read began before the commit
	if v, ok, _ := h.get(k); !ok || string(v) != "new" {
		t.Fatalf("got %q, %v; want the committed value", v, ok)
	}
}

// TestCacheIterateMergesWritesOverParent: iterating a cache over a store
// (and a cache over that cache) yields exactly the keys a map model holds,
// in order and in reverse, with writes shadowing and deletes hiding the
// parent's keys, and stops when asked.
func TestCacheIterateMergesWritesOverParent(t *testing.T) {
	s, err := OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	want := map[string]string{}
	key := func() string { return fmt.Sprintf("jobs/d/%02d", rng.IntN(30)) }
	var base []KV
	for range 20 {
		k, v := key(), fmt.Sprintf("s%d", rng.Uint32())
		base = append(base, KV{Key: []byte(k), Value: []byte(v)})
		want[k] = v
	}
	base = append(base, KV{Key: []byte("jobz/other"), Value: []byte("x")}, KV{Key: []byte("jobs/c"), Value: []byte("y")})
	if err := s.Commit(1, time.Unix(1, 0), []byte{1}, "", base); err != nil {
		t.Fatal(err)
	}
	outer := NewCache(s)
	inner := outer.Child()
	for i, c := range []*Cache{outer, inner} {
		for range 15 {
			k := key()
			if rng.IntN(3) == 0 {
				c.Delete([]byte(k))
				delete(want, k)
			} else {
				v := fmt.Sprintf("c%d-%d", i, rng.Uint32())
				c.Set([]byte(k), []byte(v))
				want[k] = v
			}
		}
	}
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, reverse := range []bool{false, true} {
		var got []string
		err := inner.Iterate([]byte("jobs/d/"), reverse, func(k, v []byte) bool {
			if want[string(k)] != string(v) {
				t.Errorf("key %s: value %q, want %q", k, v, want[string(k)])
			}
			got = append(got, string(k))
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		exp := slices.Clone(keys)
		if reverse {
			slices.Reverse(exp)
		}
		if !slices.Equal(got, exp) {
			t.Fatalf("reverse=%v: keys\n%v\nwant\n%v", reverse, got, exp)
		}
	}
	n := 0
	_ = inner.Iterate([]byte("jobs/d/"), false, func([]byte, []byte) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("iteration went on after fn returned false: %d calls", n)
	}
}

// TestSnapshotKeepsItsView: a snapshot reads the state as it was when
// taken, by key and by prefix, whatever is committed after it.
func TestSnapshotKeepsItsView(t *testing.T) {
	s, err := OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Commit(1, time.Unix(1, 0), []byte{1}, "", []KV{{Key: []byte("bank/b/a"), Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	snap := s.Snapshot()
	defer snap.Close()
	if err := s.Commit(2, time.Unix(2, 0), []byte{2}, "", []KV{{Key: []byte("bank/b/a"), Value: []byte("2")}, {Key: []byte("bank/b/b"), Value: []byte("3")}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := snap.Get([]byte("bank/b/a")); string(v) != "1" {
		t.Fatalf("snapshot reads %q, want the value before the later commit", v)
	}
	if v, _ := s.Get([]byte("bank/b/a")); string(v) != "2" {
		t.Fatalf("store reads %q", v)
	}
	n := 0
	_ = snap.Iterate([]byte("bank/b/"), false, func([]byte, []byte) bool { n++; return true })
	if n != 1 {
		t.Fatalf("snapshot iterates %d keys, want the 1 it was taken with", n)
	}
}

// TestIterateFromStartsAtTheKey: a walk from a start key over a cache
// over a cache over a store yields exactly the model's keys under the
// prefix at or after start, in order, with the caches' writes and deletes
// applied; a start before the prefix walks all of it; the walk stops when
// asked.
func TestIterateFromStartsAtTheKey(t *testing.T) {
	s, err := OpenInMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	want := map[string]string{}
	key := func() string { return fmt.Sprintf("m/pj/%02d", rng.IntN(40)) }
	var base []KV
	for range 25 {
		k, v := key(), fmt.Sprintf("s%d", rng.Uint32())
		base = append(base, KV{Key: []byte(k), Value: []byte(v)})
		want[k] = v
	}
	base = append(base, KV{Key: []byte("m/pk/00"), Value: []byte("x")}, KV{Key: []byte("m/pi"), Value: []byte("y")})
	if err := s.Commit(1, time.Unix(1, 0), []byte{1}, "", base); err != nil {
		t.Fatal(err)
	}
	outer := NewCache(s)
	inner := outer.Child()
	for i, c := range []*Cache{outer, inner} {
		for range 15 {
			k := key()
			if rng.IntN(3) == 0 {
				c.Delete([]byte(k))
				delete(want, k)
			} else {
				v := fmt.Sprintf("c%d-%d", i, rng.Uint32())
				c.Set([]byte(k), []byte(v))
				want[k] = v
			}
		}
	}
	prefix := []byte("m/pj/")
	for _, start := range []string{"m/pj/", "m/pj/17", "m/pj/170", "m/pj/39", "m/pj/99", "m/a"} {
		var exp []string
		for k := range want {
			if k >= start {
				exp = append(exp, k)
			}
		}
		slices.Sort(exp)
		var got []string
		err := IterateFrom(inner, prefix, []byte(start), func(k, v []byte) bool {
			if want[string(k)] != string(v) {
				t.Errorf("key %s: value %q, want %q", k, v, want[string(k)])
			}
			got = append(got, string(k))
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, exp) {
			t.Errorf("from %s: got %v, want %v", start, got, exp)
		}
		var committed []string
		if err := s.IterateFrom(prefix, []byte(start), func(k, _ []byte) bool { committed = append(committed, string(k)); return true }); err != nil {
			t.Fatal(err)
		}
		for _, k := range committed {
			if k < start || !strings.HasPrefix(k, "m/pj/") {
				t.Errorf("store from %s yielded %s", start, k)
			}
		}
	}
	n := 0
	if err := IterateFrom(inner, prefix, []byte("m/pj/10"), func(k, v []byte) bool { n++; return n < 3 }); err != nil || n != 3 {
		t.Fatalf("stopping: %d keys, %v", n, err)
	}
}
