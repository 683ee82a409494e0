package swarm

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"

	"github.com/aitbc/aitbc/internal/chain/modules/jobs"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Signer is a span server's agent key: it signs stage receipts.
type Signer interface {
	PublicKey() ed25519.PublicKey
	Sign(msg []byte) []byte
}

// stageState is what a session of a job commits to: hash chains over its
// input and output rows in position order (jobs.StageChain) and the
// positions processed. Rows are hashed one by one, so that a replay in
// chunks of another size commits to the same chain, and the output chain
// of one stage is the input chain of the next whatever the requests were.
type stageState struct {
	job     []byte
	chainID string
	in, out []byte
	tokens  uint64
}

// checkJob checks a request's job fields, before any session exists.
func checkJob(req ForwardRequest) ([]byte, error) {
	if req.Job == "" {
		if req.ChainID != "" {
			return nil, fail(http.StatusBadRequest, CodeInvalid, "chain_id without a job")
		}
		return nil, nil
	}
	id, err := hex.DecodeString(req.Job)
	if err != nil || len(id) != jobs.IDLen || req.ChainID == "" || len(req.ChainID) > 64 {
		return nil, fail(http.StatusBadRequest, CodeInvalid, "job must be %d hex characters with a chain id of 1-64", 2*jobs.IDLen)
	}
	return id, nil
}

// bindJob ties the session to the job its first request names; later
// requests must name the same one or none.
func (ss *spanSession) bindJob(req ForwardRequest) error {
	id, err := checkJob(req)
	if err != nil || id == nil {
		return err
	}
	if ss.stage == nil {
		if req.Pos != 0 {
			return fail(http.StatusConflict, CodeSpanMismatch, "a session takes its job on its first request")
		}
		ss.stage = &stageState{job: id, chainID: req.ChainID}
		return nil
	}
	if string(ss.stage.job) != string(id) || ss.stage.chainID != req.ChainID {
		return fail(http.StatusConflict, CodeSpanMismatch, "the session serves job %x", ss.stage.job)
	}
	return nil
}

// input extends the input chain with the request's rows: token ids as
// 4 bytes little-endian for layer 0, hidden rows as float32s otherwise.
func (st *stageState) input(req ForwardRequest, hidden []float32, dim int) {
	for i := range req.Rows {
		var row []byte
		if req.First == 0 {
			row = binary.LittleEndian.AppendUint32(nil, uint32(req.Tokens[i]))
		} else {
			row = floatBytes(hidden[i*dim : (i+1)*dim])
		}
		st.in = jobs.StageChain(st.in, uint64(req.Pos+i), row)
	}
}

// output extends the output chain: the hidden rows from pos0 on, or the
// logits (base64, as sent) of the last span at position pos0.
func (st *stageState) output(pos0 int, logits string, hidden []float32, dim int) {
	if hidden == nil {
		b, _ := base64.StdEncoding.DecodeString(logits)
		st.out = jobs.StageChain(st.out, uint64(pos0), b)
		return
	}
	for i := 0; i*dim < len(hidden); i++ {
		st.out = jobs.StageChain(st.out, uint64(pos0+i), floatBytes(hidden[i*dim:(i+1)*dim]))
	}
}

// receipt signs the session's stage receipt so far ("" without a key).
func (st *stageState) receipt(req ForwardRequest, s Signer) (string, error) {
	if s == nil {
		return "", nil
	}
	r := jobs.StageReceipt{JobID: st.job, ChainID: st.chainID, Session: req.Session, Model: req.Model,
		First: uint32(req.First), Last: uint32(req.Last - 1), Tokens: st.tokens, InHash: st.in, OutHash: st.out}
	r.SignWith(s.PublicKey(), s.Sign)
	b, err := tx.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("stage receipt: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeStageReceipt reads a forward response's receipt and checks its
// signature.
func DecodeStageReceipt(s string) (jobs.StageReceipt, error) {
	var r jobs.StageReceipt
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return r, fmt.Errorf("stage receipt: %w", err)
	}
	if err := tx.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("stage receipt: %w", err)
	}
	return r, r.Verify()
}

func floatBytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}
