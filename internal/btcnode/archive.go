package btcnode

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"
)

// btcd deletes its regtest block database at every start (btcd.go,
// removeRegressionDB: "the regression test is special in that it needs a
// clean database for each run"), and has no option against it. A devnet
// restarted with --btc would then face a new Bitcoin chain under a bridge
// that minted btc against the old one. An Archive keeps the chain's
// blocks in a file beside the node (raw blocks, length-prefixed, in height
// order); after a restart Restore submits them to the empty node in order,
// and btcd, which checks each as it would any block, ends at the same tip
// with the same hashes: the bridge's recorded deposits and payments are
// found where they were.

// maxArchivedBlock bounds one record: far above any regtest block here,
// and a corrupt length cannot make Open allocate gigabytes.
const maxArchivedBlock = 8 << 20

// Archive is a regtest chain's blocks kept in a file.
type Archive struct {
	path string

	mu     sync.Mutex
	hashes []chainhash.Hash // of the blocks in the file: heights 1..len
	size   int64            // bytes of whole records in the file
}

// OpenArchive opens (creating it) the archive at path. A record cut short
// by a crash is dropped.
func OpenArchive(path string) (*Archive, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	a := &Archive{path: path}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	err = readRecords(bufio.NewReader(f), func(b *wire.MsgBlock, n int64) error {
		a.hashes = append(a.hashes, b.BlockHash())
		a.size += n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("btcnode: archive %s: %w", path, err)
	}
	if err := f.Truncate(a.size); err != nil {
		return nil, err
	}
	return a, nil
}

// readRecords calls fn with each whole record; a short last record ends
// the file without an error.
func readRecords(r io.Reader, fn func(*wire.MsgBlock, int64) error) error {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return err
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n == 0 || n > maxArchivedBlock {
			return fmt.Errorf("a record of %d bytes", n)
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		var b wire.MsgBlock
		if err := b.Deserialize(bytes.NewReader(buf)); err != nil {
			return fmt.Errorf("a block record: %w", err)
		}
		if err := fn(&b, int64(4+n)); err != nil {
			return err
		}
	}
}

// Height is the height of the last archived block.
func (a *Archive) Height() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int64(len(a.hashes))
}

// Sync brings the archive to the node's best chain: blocks past the
// archived height are appended; when the node's chain left the archived
// one (a reorganisation: invalidateblock), the archive is cut back to
// where they agree first.
func (a *Archive) Sync(c *rpcclient.Client) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	tip, err := c.GetBlockCount()
	if err != nil {
		return err
	}
	// Where the node and the archive agree: walk back from the lower tip.
	keep := min(int64(len(a.hashes)), tip)
	for keep > 0 {
		h, err := c.GetBlockHash(keep)
		if err != nil {
			return err
		}
		if h.IsEqual(&a.hashes[keep-1]) {
			break
		}
		keep--
	}
	if keep < int64(len(a.hashes)) {
		if err := a.truncateLocked(keep); err != nil {
			return err
		}
	}
	if tip == keep {
		return nil
	}
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	added := []chainhash.Hash{}
	var size int64
	for height := keep + 1; height <= tip; height++ {
		h, err := c.GetBlockHash(height)
		if err != nil {
			return err
		}
		b, err := c.GetBlock(h)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := b.Serialize(&buf); err != nil {
			return err
		}
		var hdr [4]byte
		binary.LittleEndian.PutUint32(hdr[:], uint32(buf.Len()))
		_, _ = w.Write(hdr[:])
		_, _ = w.Write(buf.Bytes())
		added = append(added, *h)
		size += int64(4 + buf.Len())
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	a.hashes = append(a.hashes, added...)
	a.size += size
	return nil
}

// truncateLocked keeps the first keep blocks of the file.
func (a *Archive) truncateLocked(keep int64) error {
	f, err := os.Open(a.path)
	if err != nil {
		return err
	}
	var size int64
	n := int64(0)
	errStop := errors.New("stop")
	err = readRecords(bufio.NewReader(f), func(_ *wire.MsgBlock, rec int64) error {
		if n == keep {
			return errStop
		}
		n++
		size += rec
		return nil
	})
	f.Close()
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	if err := os.Truncate(a.path, size); err != nil {
		return err
	}
	a.hashes, a.size = a.hashes[:keep], size
	return nil
}

// Restore submits the archived blocks the node lacks, in order, and
// returns how many it submitted. The node must be on the archive's chain
// (a fresh regtest node is: its genesis is every regtest node's).
func (a *Archive) Restore(c *rpcclient.Client) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	tip, err := c.GetBlockCount()
	if err != nil {
		return 0, err
	}
	if tip >= int64(len(a.hashes)) {
		return 0, nil
	}
	if tip > 0 {
		h, err := c.GetBlockHash(tip)
		if err != nil {
			return 0, err
		}
		if !h.IsEqual(&a.hashes[tip-1]) {
			return 0, fmt.Errorf("btcnode: the node's block %d is %s, the archive's %s: another chain", tip, h, a.hashes[tip-1])
		}
	}
	f, err := os.Open(a.path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	height, submitted := int64(0), 0
	err = readRecords(bufio.NewReader(f), func(b *wire.MsgBlock, _ int64) error {
		height++
		if height <= tip || height > int64(len(a.hashes)) {
			return nil
		}
		if err := c.SubmitBlock(btcutil.NewBlock(b), nil); err != nil {
			return fmt.Errorf("block %d (%s): %w", height, b.BlockHash(), err)
		}
		submitted++
		return nil
	})
	if err != nil {
		return submitted, fmt.Errorf("btcnode: restoring the regtest chain: %w", err)
	}
	best, err := c.GetBlockCount()
	if err != nil {
		return submitted, err
	}
	if best != int64(len(a.hashes)) {
		return submitted, fmt.Errorf("btcnode: restored to height %d, the archive has %d", best, len(a.hashes))
	}
	return submitted, nil
}
