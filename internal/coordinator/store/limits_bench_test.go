package store_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aitbc/aitbc/internal/coordinator/store"
	"github.com/aitbc/aitbc/internal/testutil/pgtest"
)

// BenchmarkSubmitOneTenant compares storing new jobs of one tenant from
// parallel submitters with PutJob (no shared check) and PutNewJob (the
// tenant's lock and load read, then the insert): the price of limits that
// hold across coordinators.
func BenchmarkSubmitOneTenant(b *testing.B) {
	dsn := pgtest.DSN(b)
	s, err := store.OpenPostgres(context.Background(), dsn, store.PostgresOptions{Owner: "c1", MaxConns: 8})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var n atomic.Int64
	job := func() *store.Job {
		return &store.Job{ID: jobID(int(n.Add(1))), TenantID: "t1", Model: "m", Prompt: "hello", Status: store.StatusQueued,
			Created: time.Now(), Payment: "deposit", MaxPrice: 7}
	}
	b.Run("PutJob", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.PutJob(context.Background(), job()); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("PutNewJob", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.PutNewJob(context.Background(), job(), func(store.Load) error { return nil }); err != nil {
					b.Error(err)
				}
			}
		})
	})
}
