package jobs

import (
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Invariants implements module.Invariants.
func (k *Keeper) Invariants() []module.Invariant {
	return []module.Invariant{
		{Name: "jobs/escrow", Check: k.checkEscrow},
		{Name: "jobs/deposits", Check: k.checkDeposits},
		{Name: "jobs/payouts", Check: k.checkPayouts},
	}
}

// eachJob calls fn for every job record, oldest id first. It walks every
// job ever created: invariants and audits run it, never a transaction.
func eachJob(q module.Query, fn func(j *Job) error) error {
	var ferr error
	err := q.State.Iterate(JobPrefix, false, func(_, v []byte) bool {
		j, err := DecodeJob(v)
		if err != nil {
			ferr = err
			return false
		}
		ferr = fn(j)
		return ferr == nil
	})
	if err != nil {
		return err
	}
	return ferr
}

// checkEscrow: the escrow account holds the escrow of every open or
// assigned job, and nothing else.
func (k *Keeper) checkEscrow(q module.Query) module.Finding {
	var sum coin.Amount
	n := 0
	err := eachJob(q, func(j *Job) error {
		if !j.Active() {
			return nil
		}
		n++
		var err error
		sum, err = sum.Add(j.Escrow)
		return err
	})
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	bal, err := k.bank.Balance(q.State, k.escrow)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Compare(k.escrow, bal, sum, fmt.Sprintf("the escrows of %d open or assigned jobs", n))
}

// checkDeposits: the deposits account holds every deposit, and no deposit
// has more announced for withdrawal than it held when announced (it may
// hold less since: jobs draw on it).
func (k *Keeper) checkDeposits(q module.Query) module.Finding {
	var sum coin.Amount
	n := 0
	var ferr error
	err := q.State.Iterate(DepositPrefix, false, func(_, v []byte) bool {
		var d Deposit
		if ferr = tx.Unmarshal(v, &d); ferr != nil {
			return false
		}
		n++
		sum, ferr = sum.Add(d.Amount)
		return ferr == nil
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	bal, err := k.bank.Balance(q.State, k.deposits)
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Compare(k.deposits, bal, sum, fmt.Sprintf("%d deposits", n))
}

// checkPayouts: every finished job paid out exactly its escrow — miner,
// protocol fee, commission and refund for a settled one, a full refund otherwise.
func (k *Keeper) checkPayouts(q module.Query) module.Finding {
	finished, bad := 0, 0
	var first string
	err := eachJob(q, func(j *Job) error {
		if j.Active() {
			return nil
		}
		finished++
		var out coin.Amount
		var err error
		if out, err = j.Paid.Add(j.Fee); err == nil {
			if out, err = out.Add(j.Commission); err == nil {
				out, err = out.Add(j.Refund)
			}
		}
		if err != nil || out != j.Escrow || (j.Status != StatusSettled && j.Refund != j.Escrow) {
			bad++
			if first == "" {
				first = fmt.Sprintf("; first: job %x (%s) escrow %s, paid %s + fee %s + commission %s + refund %s", j.ID, StatusName(j.Status), j.Escrow, j.Paid, j.Fee, j.Commission, j.Refund)
			}
		}
		return nil
	})
	if err != nil {
		return module.Finding{Broken: true, Detail: err.Error()}
	}
	return module.Finding{
		Broken:  bad > 0,
		Detail:  fmt.Sprintf("%d finished jobs, %d paid out other than their escrow%s", finished, bad, first),
		Figures: map[string]string{"finished": fmt.Sprint(finished), "mismatched": fmt.Sprint(bad)},
	}
}
