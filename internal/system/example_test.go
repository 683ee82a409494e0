package system_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aitbc/aitbc/internal/system"
	"github.com/aitbc/aitbc/internal/testnet"
)

// A single-validator chain and its node with the REST API, started from
// one Config and stopped with Close (`aitbc node start` does the same
// through system.Run).
func ExampleStart() {
	dir, _ := os.MkdirTemp("", "aitbc-example-")
	defer os.RemoveAll(dir)
	home := filepath.Join(dir, "chain")
	if _, err := system.InitChain(home, system.ChainSpec{ChainID: "aitbc-example"}); err != nil {
		fmt.Println(err)
		return
	}
	p2p, _ := testnet.FreePort("127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := system.Start(ctx, system.Config{Node: &system.NodeConfig{
		Home: home, BlockTime: 100 * time.Millisecond, DisablePEX: true,
		P2PListen: fmt.Sprintf("tcp://127.0.0.1:%d", p2p), RESTListen: "127.0.0.1:0",
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	if err := s.Node.WaitHeight(ctx, 1); err != nil {
		fmt.Println(err)
		return
	}
	h, err := s.Node.Client().Health(ctx)
	fmt.Println(h.ChainID, err)
	// Output: aitbc-example <nil>
}
