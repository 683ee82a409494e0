package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Tokens relayed between coordinators: the coordinator driving a job
// writes the job's released tokens as rows of job_tokens when a customer
// on another coordinator follows it (a NOTIFY payload holds 8000 bytes at
// most, so the rows carry the text and the notification only says where
// to look), and that coordinator reads them in order. The job's result in
// the store stays the authority: a follower ends with it, whatever it
// missed.

// StreamRequest is the status word of the notification "<job id> follow":
// a customer on some coordinator follows the job, and its driver relays
// its tokens (RelayTokens) from then on.
const StreamRequest = "follow"

// tokensWord is the status word of the notification "<job id> tokens":
// more of the job's tokens are in job_tokens.
const tokensWord = "tokens"

// Token is one relayed token of a job.
type Token struct {
	Attempt int
	Seq     int // within the attempt, from 1
	Text    string
}

// MaxRelayBatch caps the tokens one Tokens call returns.
const MaxRelayBatch = 1024

// RequestStream asks the coordinator driving job id to relay its tokens.
func (s *Postgres) RequestStream(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify('`+jobChannel+`', $1 || ' `+StreamRequest+`')`, id); err != nil {
		return fmt.Errorf("store: stream request %s: %w", id, err)
	}
	return nil
}

// RelayTokens stores tokens of job id (in order) and tells the followers,
// in one statement. A token already stored (the same attempt and seq) is
// kept as it was.
func (s *Postgres) RelayTokens(ctx context.Context, id string, toks []Token) error {
	if len(toks) == 0 {
		return nil
	}
	attempts, seqs, texts := make([]int32, len(toks)), make([]int32, len(toks)), make([]string, len(toks))
	for i, t := range toks {
		attempts[i], seqs[i], texts[i] = int32(t.Attempt), int32(t.Seq), t.Text
	}
	_, err := s.pool.Exec(ctx, `WITH ins AS (
		INSERT INTO job_tokens(job_id, attempt, seq, text)
		SELECT $1, a, q, t FROM unnest($2::int[], $3::int[], $4::text[]) AS u(a, q, t)
		ON CONFLICT DO NOTHING RETURNING 1)
		SELECT pg_notify('`+jobChannel+`', $1 || ' `+tokensWord+`') FROM (SELECT 1 FROM ins LIMIT 1) x`, id, attempts, seqs, texts)
	if err != nil {
		return fmt.Errorf("store: relay tokens of %s: %w", id, err)
	}
	return nil
}

// RelayedTokens returns up to MaxRelayBatch tokens of job id after
// (attempt, seq), in order.
func (s *Postgres) RelayedTokens(ctx context.Context, id string, attempt, seq int) ([]Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT attempt, seq, text FROM job_tokens
		WHERE job_id = $1 AND (attempt, seq) > ($2, $3) ORDER BY attempt, seq LIMIT $4`, id, attempt, seq, MaxRelayBatch)
	if err != nil {
		return nil, fmt.Errorf("store: relayed tokens of %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) {
		var t Token
		err := r.Scan(&t.Attempt, &t.Seq, &t.Text)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: relayed tokens of %s: %w", id, err)
	}
	return out, nil
}

// DropRelayedTokens forgets job id's relayed tokens (it ended: its
// followers end with the stored result).
func (s *Postgres) DropRelayedTokens(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM job_tokens WHERE job_id = $1`, id); err != nil {
		return fmt.Errorf("store: drop relayed tokens of %s: %w", id, err)
	}
	return nil
}
