// Package state is the chain application's storage: a Pebble database of
// committed state (Store) and in-memory write caches (Cache) layered on it,
// one per block, per transaction and for the mempool's view. A block's
// writes reach Pebble in one atomic, synced batch together with its height
// and app hash, so a crash leaves either the whole block or none of it.
//
// Only the chain application and its modules import this package.
package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"
)

// Reserved key prefixes. Keys under MetaPrefix and IndexPrefix are not
// part of the app hash: they describe the chain rather than its state.
var (
	MetaPrefix  = []byte("m/")
	IndexPrefix = []byte("x/")
)

var (
	keyHeight  = []byte("m/height")
	keyAppHash = []byte("m/apphash")
	keyChainID = []byte("m/chainid")
	keyTime    = []byte("m/time")
)

func keyAppHashAt(h int64) []byte {
	k := append([]byte("m/apphash/"), make([]byte, 8)...)
	binary.BigEndian.PutUint64(k[len(k)-8:], uint64(h))
	return k
}

// Reader reads state.
type Reader interface {
	// Get returns the value of key, or nil when it is absent.
	Get(key []byte) ([]byte, error)
}

// View is a Reader that can also walk the keys under a prefix in order:
// queries and invariants read whole collections (every miner, every
// deposit). Block execution should not iterate unbounded prefixes.
type View interface {
	Reader
	// Iterate calls fn for each key with the given prefix, in key order
	// or, if reverse, in reverse order, until fn returns false. key and
	// value are valid only during the call.
	Iterate(prefix []byte, reverse bool, fn func(key, value []byte) bool) error
}

var _ View = (*Store)(nil)

// Store is the committed state in Pebble.
type Store struct {
	db  *pebble.DB
	hot *hotSet
}

// Open opens (or creates) the store in dir.
func Open(dir string) (*Store, error) {
	o := options()
	db, err := pebble.Open(dir, o)
	o.Cache.Unref() // the database holds its own reference
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", dir, err)
	}
	return &Store{db: db, hot: newHotSet(hotKeys)}, nil
}

// OpenInMemory returns a store that lives in memory only, for tests.
func OpenInMemory() (*Store, error) {
	o := options()
	o.FS = vfs.NewMem()
	db, err := pebble.Open("", o)
	o.Cache.Unref()
	if err != nil {
		return nil, fmt.Errorf("state: open in memory: %w", err)
	}
	return &Store{db: db, hot: newHotSet(hotKeys)}, nil
}

// hotKeys bounds the in-memory copy of committed state values: about
// 100 bytes each, so some 10 MB.
const hotKeys = 100_000

// options tune Pebble for the app's reads, which are point lookups of
// balances and nonces for every transaction in CheckTx and FinalizeBlock: a
// bloom filter on every level lets a lookup skip the tables that cannot
// hold the key, and a block cache larger than Pebble's 8 MB default keeps
// the accounts in use decompressed in memory (under load a node spent about
// a tenth of its CPU in sstable reads and snappy decoding with the
// defaults). A memtable of up to 32 MB instead of 4 MB flushes less often:
// every block writes index entries under random transaction hashes, and
// each flush of those is compacted again level by level (about 5% of a
// node's CPU under load). Pebble starts memtables at 256 KB and doubles
// them, so a quiet node does not hold the full size.
func options() *pebble.Options {
	o := &pebble.Options{Logger: quietLogger{}, Cache: pebble.NewCache(64 << 20), MemTableSize: 32 << 20}
	o.Levels = make([]pebble.LevelOptions, 7)
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return o
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Get implements Reader. State values (balances, nonces: the keys every
// transaction reads, in CheckTx, its rechecks and its block) come from an
// in-memory copy when they were read or written recently; a Pebble point
// lookup costs tens of times more.
func (s *Store) Get(key []byte) ([]byte, error) {
	if !IsHashed(key) {
		return s.get(key)
	}
	v, ok, gen := s.hot.get(key)
	if ok {
		return v, nil
	}
	v, err := s.get(key)
	if err == nil {
		s.hot.fill(key, v, gen)
	}
	return v, err
}

func (s *Store) get(key []byte) ([]byte, error) { return get(s.db, key) }

// get reads key from a Pebble database or snapshot; a copy, nil if absent.
func get(r pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: get: %w", err)
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, nil
}

// Iterate calls fn for each key with the given prefix, in key order or, if
// reverse, in reverse order, until fn returns false.
func (s *Store) Iterate(prefix []byte, reverse bool, fn func(key, value []byte) bool) error {
	return iterate(s.db, prefix, reverse, fn)
}

// iterate walks a Pebble database or snapshot (see Store.Iterate).
func iterate(r pebble.Reader, prefix []byte, reverse bool, fn func(key, value []byte) bool) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("state: iterate: %w", err)
	}
	defer it.Close()
	var ok bool
	if reverse {
		ok = it.Last()
	} else {
		ok = it.First()
	}
	for ; ok; ok = step(it, reverse) {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	return it.Error()
}

func step(it *pebble.Iterator, reverse bool) bool {
	if reverse {
		return it.Prev()
	}
	return it.Next()
}

func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// BlockTime returns the time of the last committed block (zero on a new store).
func (s *Store) BlockTime() (time.Time, error) {
	v, err := s.Get(keyTime)
	if err != nil || len(v) != 8 {
		return time.Time{}, err
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC(), nil
}

// Height returns the last committed height and app hash (0, nil on a new store).
func (s *Store) Height() (int64, []byte, error) {
	h, err := s.Get(keyHeight)
	if err != nil || h == nil {
		return 0, nil, err
	}
	ah, err := s.Get(keyAppHash)
	return int64(binary.BigEndian.Uint64(h)), ah, err
}

// AppHashAt returns the app hash committed at height h, or nil.
func (s *Store) AppHashAt(h int64) ([]byte, error) { return s.Get(keyAppHashAt(h)) }

// ChainID returns the chain id recorded at genesis, or "".
func (s *Store) ChainID() (string, error) {
	v, err := s.Get(keyChainID)
	return string(v), err
}

// KV is one write: a nil Value deletes the key.
type KV struct {
	Key, Value []byte
}

// Commit writes a block's changes, its height, time and app hash (and, at
// genesis, the chain id) in one synced batch.
func (s *Store) Commit(height int64, blockTime time.Time, appHash []byte, chainID string, writes []KV) error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, w := range writes {
		var err error
		if w.Value == nil {
			err = b.Delete(w.Key, nil)
		} else {
			err = b.Set(w.Key, w.Value, nil)
		}
		if err != nil {
			return fmt.Errorf("state: batch: %w", err)
		}
	}
	var hb [8]byte
	binary.BigEndian.PutUint64(hb[:], uint64(height))
	_ = b.Set(keyHeight, hb[:], nil)
	_ = b.Set(keyAppHash, appHash, nil)
	_ = b.Set(keyAppHashAt(height), appHash, nil)
	var tb [8]byte
	binary.BigEndian.PutUint64(tb[:], uint64(blockTime.UnixNano()))
	_ = b.Set(keyTime, tb[:], nil)
	if chainID != "" {
		_ = b.Set(keyChainID, []byte(chainID), nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("state: commit height %d: %w", height, err)
	}
	s.hot.commit(writes)
	return nil
}

// IsHashed reports whether key is part of the app hash.
func IsHashed(key []byte) bool {
	return !bytes.HasPrefix(key, MetaPrefix) && !bytes.HasPrefix(key, IndexPrefix)
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// Snapshot is a read-only view of the store as it was when taken: long
// reads (an audit walking every record) use one so that they neither hold
// the application's lock nor see a later block half-way.
type Snapshot struct{ snap *pebble.Snapshot }

var _ View = (*Snapshot)(nil)

// Snapshot takes a snapshot of the committed state. Close it when done.
func (s *Store) Snapshot() *Snapshot { return &Snapshot{snap: s.db.NewSnapshot()} }

// Get implements Reader.
func (s *Snapshot) Get(key []byte) ([]byte, error) { return get(s.snap, key) }

// Iterate implements View.
func (s *Snapshot) Iterate(prefix []byte, reverse bool, fn func(key, value []byte) bool) error {
	return iterate(s.snap, prefix, reverse, fn)
}

// Close releases the snapshot.
func (s *Snapshot) Close() error { return s.snap.Close() }
