package sched_test

import (
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator/sched"
)

// A job whose messages carry images runs only on a miner that declares
// vision for its model, however much cheaper the others are; with none,
// the explanation names the requirement.
func TestAJobWithImagesRunsOnlyWhereVisionIsDeclared(t *testing.T) {
	s := sched.New(jobs.DefaultParams(), 1)
	job := sched.Job{Model: "llava", MaxTokens: 100, MaxPrice: 10 * coin.Unit, Vision: true}
	cheap := miner(1, coin.Unit/100, "llava")
	otherModel := miner(2, coin.Unit, "llava", "qwen-vl")
	otherModel.Vision = []string{"qwen-vl"}
	seeing := miner(3, coin.Unit, "llava")
	seeing.Vision = []string{"llava"}

	_, np := s.Place(job, []*sched.Miner{cheap, otherModel})
	if np == nil || np.Reason != sched.NoVision || np.Serving != 2 || !strings.Contains(np.Error(), "accepts image inputs") {
		t.Fatalf("no vision: %+v", np)
	}
	for range 20 {
		m, np := s.Place(job, []*sched.Miner{cheap, otherModel, seeing})
		if np != nil || m != seeing {
			t.Fatalf("placed on %v (%v), want the miner declaring vision", m, np)
		}
	}
	job.Vision = false
	if m, _ := s.Place(job, []*sched.Miner{cheap, seeing}); m != cheap {
		t.Fatalf("a text job went to %v, not the cheapest", m)
	}
}
