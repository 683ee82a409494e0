package cli_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/devnet"
)

type leaseOut struct {
	ID         string      `json:"lease_id"`
	Status     string      `json:"status"`
	Locked     coin.Amount `json:"locked"`
	Drawn      coin.Amount `json:"drawn"`
	Refunded   coin.Amount `json:"refunded"`
	Remaining  coin.Amount `json:"remaining"`
	Opened     int64       `json:"opened_height"`
	Closed     int64       `json:"closed_height"`
	Reason     string      `json:"reason"`
	GPU        string      `json:"gpu"`
	Allocation *struct {
		AgentID string `json:"agent_id"`
		Miner   string `json:"miner"`
		Lease   string `json:"lease_id"`
		Slots   int    `json:"slots"`
	} `json:"allocation"`
	AllocationError string      `json:"allocation_error"`
	Fee             coin.Amount `json:"fee"`
	SecondsLeft     int64       `json:"seconds_left"`
}

// TestGPURentalOnADevnet: seed 001's "GPU Cloud Computing" listing, on the
// devnet's miner, leased with `aitbc rent`: the whole price is locked, the
// lease closes itself when its paid-up time is over having paid the
// provider exactly what it locked, its one place is taken while it runs
// and free once it closed, an early end refunds the unused part; every
// balance is checked to the unit (each transaction costs the 0.001 AITBC
// fee) and the devnet audits the invariants after every block.
func TestGPURentalOnADevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	clearEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, e := startJobsDevnet(ctx, t)
	balance := func(name string) coin.Amount {
		t.Helper()
		got := strings.TrimSuffix(strings.TrimPrefix(e.ok("balance", "--name", name), name+": "), " AITBC\n")
		a, err := coin.Parse(got)
		if err != nil {
			t.Fatalf("balance of %s: %q", name, got)
		}
		return a
	}
	waitBalance := func(name string, want coin.Amount) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for balance(name) != want {
			if time.Now().After(deadline) {
				t.Fatalf("balance of %s: %s, want %s", name, balance(name), want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	coord := []string{"--coordinator", d.CoordinatorURL()}
	lease := func(args ...string) leaseOut {
		t.Helper()
		var l leaseOut
		out := e.ok(append(append(args, coord...), "--output", "json")...)
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		return l
	}
	const fee = coin.Unit / 1000
	for _, name := range []string{"researcher-1", "researcher-2"} {
		e.ok("create", "--name", name, "--password", "123")
		e.ok("send", "--from", "genesis-ops", "--to", e.addrOf(name), "--amount", "2000", "--password", "123")
		waitBalance(name, 2000*coin.Unit)
	}
	miner := devnet.MinerWallet(0)
	out := e.ok("marketplace", "--action", "create", "--name", "GPU Cloud Computing", "--type", "gpu-rental", "--price", "50", "--capacity", "1",
		"--wallet", miner, "--password", "123", "--description", "High-performance GPU rental for AI workloads", "--parameters", "gpu_type:rtx4090,memory:24gb,bandwidth:high")
	svc := grepCut(out, "service_id")
	if !strings.HasPrefix(svc, "svc-") {
		t.Fatalf("create printed %q", out)
	}

	// Bad input: refused with the chain's reason, nothing locked.
	e.fails("rental duration out of range", "rent", "open", "--service-id", svc, "--duration", "1", "--wallet", "researcher-1")
	e.fails("longer than the escrow offered covers", "rent", "open", "--service-id", svc, "--duration", "3600", "--max-amount", "49.99", "--wallet", "researcher-1")
	e.fails("cannot rent its own listing", "rent", "open", "--service-id", svc, "--duration", "60", "--wallet", miner, "--password", "123")
	e.fails("no such listing", "rent", "open", "--service-id", "svc-nope", "--duration", "60", "--wallet", "researcher-1")
	if got := balance("researcher-1"); got != 2000*coin.Unit {
		t.Fatalf("refusals moved money: %s", got)
	}

	// 10 s at 50 AITBC an hour: floor(50,000,000 × 10,000 / 3,600,000) = 138,888 units.
	l1 := lease("rent", "open", "--service-id", svc, "--duration", "10", "--wallet", "researcher-1")
	if l1.Locked != 138_888 || l1.Status != "active" || l1.Fee != fee || l1.GPU == "" {
		t.Fatalf("opened %+v", l1)
	}
	if got, want := balance("researcher-1"), 2000*coin.Unit-138_888-fee; got != want {
		t.Fatalf("researcher-1 after opening: %s, want %s", got, want)
	}
	// The listing's one place is taken.
	e.fails("capacity is taken", "rent", "open", "--service-id", svc, "--duration", "60", "--wallet", "researcher-2")
	deadline := time.Now().Add(60 * time.Second)
	for {
		l := lease("rent", "status", "--lease-id", l1.ID)
		if l.Status == "expired" {
			if l.Drawn != 138_888 || l.Refunded != 0 || l.Remaining != 0 || l.Reason != "paid-up time over" {
				t.Fatalf("expired lease %+v", l)
			}
			break
		}
		if l.Drawn > l.Locked || l.Status != "active" || time.Now().After(deadline) {
			t.Fatalf("lease %+v", l)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got, want := balance("researcher-1"), 2000*coin.Unit-138_888-fee; got != want {
		t.Fatalf("researcher-1 after the lease ran out: %s, want %s", got, want)
	}
	// Its place is free: the other renter gets it, and ends it early. The
	// coordinator holds the leased miner's slot for it meanwhile.
	l2 := lease("rent", "open", "--service-id", svc, "--duration", "1h", "--agent-id", "gpu-worker-1", "--wallet", "researcher-2")
	if l2.Locked != 50*coin.Unit {
		t.Fatalf("an hour locked %s", l2.Locked)
	}
	if a := l2.Allocation; a == nil || a.AgentID != "gpu-worker-1" || a.Lease != l2.ID || a.Slots != 1 || a.Miner != e.addrOf(miner) {
		t.Fatalf("allocation %+v (%s)", l2.Allocation, l2.AllocationError)
	}
	e.fails("is "+e.addrOf("researcher-2")+"'s", append([]string{"rent", "allocate", "--lease-id", l2.ID, "--wallet", "researcher-1"}, coord...)...)
	end := lease("rent", "end", "--lease-id", l2.ID, "--wallet", "researcher-2")
	if end.Status != "ended" || end.Drawn+end.Refunded != 50*coin.Unit || end.Remaining != 0 || end.Reason != "ended by the customer" {
		t.Fatalf("ended %+v", end)
	}
	if got, want := balance("researcher-2"), 2000*coin.Unit-2*fee-end.Drawn; got != want {
		t.Fatalf("researcher-2 after ending: %s, want %s (drawn %s)", got, want, end.Drawn)
	}
	e.fails("the lease has closed", "rent", "end", "--lease-id", l2.ID, "--wallet", "researcher-2")
	e.fails("lease "+l2.ID+" is ended", append([]string{"rent", "allocate", "--lease-id", l2.ID, "--wallet", "researcher-2"}, coord...)...)
	// The seeds' `resource allocate`, paid: a lease on the cheapest free
	// gpu-rental listing. The devnet's miner has no GPU memory to offer.
	e.fails("no active gpu-rental listing with a free place and 8192 MB of GPU memory", append([]string{"resource", "allocate", "--agent-id", "gpu-worker-2",
		"--gpu", "1", "--memory", "8192", "--duration", "60", "--wallet", "researcher-1"}, coord...)...)
	before := balance("researcher-1")
	l3 := lease("resource", "allocate", "--agent-id", "gpu-worker-2", "--gpu", "1", "--duration", "60", "--wallet", "researcher-1")
	if l3.Locked != 833_333 || l3.Allocation == nil || l3.Allocation.AgentID != "gpu-worker-2" { // floor(50e6 × 60,000 / 3.6e6)
		t.Fatalf("resource allocate: %+v (%s)", l3, l3.AllocationError)
	}
	end3 := lease("rent", "end", "--lease-id", l3.ID, "--wallet", "researcher-1")
	if got, want := balance("researcher-1"), before-2*fee-end3.Drawn; got != want || end3.Drawn+end3.Refunded != 833_333 {
		t.Fatalf("researcher-1 after the allocation's lease: %s, want %s (%+v)", got, want, end3)
	}
	list := e.ok("rent", "status", "--service-id", svc, "--all")
	if strings.Count(list, "lease_id ") != 3 || !strings.Contains(list, l1.ID+" | expired") {
		t.Fatalf("status --all:\n%s", list)
	}
	if got := e.ok("rent", "status"); got != "no leases\n" {
		t.Fatalf("active leases: %q", got)
	}
}
