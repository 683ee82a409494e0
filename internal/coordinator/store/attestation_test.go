package store_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/coordinator/store"
)

// TestContractAttestationSurvivesReopen: the attestation a spot check's
// verifier fetches is kept with the job's result by both stores.
func TestContractAttestationSurvivesReopen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func() store.Store) {
		ctx := context.Background()
		s := open()
		var a address.Address
		a[0] = 3
		now := time.Now().UTC().Truncate(time.Millisecond)
		if err := s.CreateTenant(ctx, store.Tenant{ID: "ta", Name: "attested", Address: a, Created: now}, []byte("attest-key")); err != nil {
			t.Fatal(err)
		}
		att := []byte{0x8a, 0x01, 0x02, 0xff, 0x00}
		j := &store.Job{ID: jobID(77), TenantID: "ta", Customer: a, Model: "m", Status: store.StatusSettled, Created: now,
			Result: "It was", Receipt: []byte{0x8e}, Attestation: att}
		if err := s.PutJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = open()
		defer s.Close()
		got, err := s.Job(ctx, jobID(77))
		if err != nil || !bytes.Equal(got.Attestation, att) || got.Result != "It was" {
			t.Fatalf("job after reopen: %+v %v", got, err)
		}
	})
}
