package state

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
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
		if err := s.Commit(height, []byte{1}, "", writes); err != nil {
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
