package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/aitbc/aitbc/internal/address"
	"github.com/aitbc/aitbc/internal/chain/module"
	"github.com/aitbc/aitbc/internal/chain/modules/audits"
	"github.com/aitbc/aitbc/internal/chain/modules/coordinators"
	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/minerproto"
)

// Origin is a coordinator the verifier may fetch a job from.
type Origin struct {
	URL    string // for logs and errors
	Source Source
}

// Locator lists the coordinators to ask for a job, in order, given the
// job's coordinator as the chain records it (the key that created it).
type Locator func(ctx context.Context, coord address.Address) ([]Origin, error)

// MaxOrigins bounds the coordinators tried for one job, so that a chain
// full of announcements cannot make one check cost unbounded requests.
const MaxOrigins = 16

// Coordinators is the Locator of `aitbc verifier start --coordinator`:
// first the coordinators the job's own coordinator key announced on chain
// (coordinators module; the ones that hold the job), then the URLs given,
// then, when announced is set, every coordinator announced on chain (by
// the key by, when not empty). Each is a coordinator.Client; the list is
// deduplicated and cut at MaxOrigins. The announcements are read per job,
// so a coordinator announced after the verifier started is found.
func Coordinators(node module.Getter, given []string, announced bool, by string) Locator {
	return func(ctx context.Context, coord address.Address) ([]Origin, error) {
		var urls []string
		if !coord.IsZero() {
			// A coordinator without announcements is not an error: the
			// given ones may still hold its jobs.
			if l, err := coordinators.Of(ctx, node, coord); err == nil {
				for _, v := range l.Coordinators {
					urls = append(urls, v.URL)
				}
			}
		}
		urls = append(urls, given...)
		if announced {
			cands, err := coordinator.Announced(ctx, node, by)
			if err != nil && len(urls) == 0 {
				return nil, err
			}
			urls = append(urls, coordinator.URLs(cands)...)
		}
		seen := map[string]bool{}
		var out []Origin
		for _, u := range urls {
			u = strings.TrimRight(strings.TrimSpace(u), "/")
			if u == "" || seen[u] || len(out) == MaxOrigins {
				continue
			}
			seen[u] = true
			out = append(out, Origin{URL: u, Source: coordinator.NewClient(u, "")})
		}
		return out, nil
	}
}

// onChain is what the chain says of a job under check: the facts a
// coordinator's copy must agree with.
type onChain struct {
	job     jobs.View
	check   audits.CheckView
	private bool
}

// authenticate checks a coordinator's copy of a job against the chain, so
// that a coordinator that lies (another prompt, other messages, another
// result, attestation or limit) cannot frame the miner: the receipt must
// be the one the job's settlement anchored (for a private job, whose
// anchored receipt is the private one, its model, prompt hash, miner and
// attestation hash must be the chain's), the prompt or messages must hash
// to its prompt hash, the result to its result hash and the attestation to
// the check's attestation hash. A mismatch is ErrWrongData: no verdict on
// the miner, and the next coordinator is asked. The limit the check uses
// is the chain's max_tokens.
func authenticate(id string, job *coordinator.AuditJob, c onChain) error {
	wrong := func(f string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrWrongData, fmt.Sprintf(f, args...))
	}
	r, err := jobs.DecodeReceipt(job.Receipt)
	if err != nil {
		return wrong("the receipt does not decode: %v", err)
	}
	if hex.EncodeToString(r.JobID) != id || job.Model != r.Model || r.Model != c.job.Model {
		return wrong("the receipt is for job %x, model %s; the chain's job %s is model %s", r.JobID, r.Model, id, c.job.Model)
	}
	if c.job.Miner == nil || !bytes.Equal(r.Miner, c.job.Miner[:]) {
		return wrong("the receipt is not by the job's miner")
	}
	if !c.private && r.HashHex() != c.job.ReceiptHash {
		return wrong("the receipt's hash %s is not the one the job's settlement anchored (%s)", r.HashHex(), c.job.ReceiptHash)
	}
	if hex.EncodeToString(r.PromptHash) != c.job.PromptHash {
		return wrong("the receipt's prompt hash is not the job's on chain")
	}
	if c.check.AttestHash != "" && hex.EncodeToString(r.AttestHash) != c.check.AttestHash {
		return wrong("the receipt's attestation hash is not the check's")
	}
	msgs := chatMessages(job.Messages)
	if ph := minerproto.PromptHash(job.Prompt, msgs); hex.EncodeToString(ph[:]) != c.job.PromptHash {
		return wrong("the prompt or messages served do not hash to the job's prompt hash")
	}
	if audits.Reexecutable(job.Model) {
		return nil // Reexecute checks the input and the output itself
	}
	if rh := sha256.Sum256([]byte(job.Result)); !bytes.Equal(rh[:], r.ResultHash) {
		return wrong("the result served does not hash to the receipt's result hash")
	}
	if ah := sha256.Sum256(job.Attestation); c.check.AttestHash != "" && hex.EncodeToString(ah[:]) != c.check.AttestHash {
		return wrong("the attestation served is not the one the check names")
	}
	job.MaxTokens = int(c.job.MaxTokens)
	return nil
}
