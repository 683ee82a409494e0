package audits

import (
	"encoding/hex"
	"fmt"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/chain/tx"
)

// Message types.
const (
	TypeRegister   = "audits/register_verifier"   // the signer bonds Bond and becomes (or tops up) a verifier
	TypeUnregister = "audits/unregister_verifier" // the signer leaves, its bond paid back (no open checks)
	TypeReport     = "audits/report"              // the assigned verifier reports a check
)

// MaxEvidence bounds a report's evidence (a hash), MaxReason its reason.
const (
	MaxEvidence = 64
	MaxReason   = 280
)

// MsgRegister bonds Bond (added to any bond the signer has).
type MsgRegister struct {
	_    struct{} `cbor:",toarray"`
	Bond coin.Amount
}

// MsgUnregister takes the signer's whole bond back.
type MsgUnregister struct {
	_ struct{} `cbor:",toarray"`
}

// MsgReport is a verifier's verdict on the job JobID: Pass, or fail with
// Evidence (the SHA-256 of the commitments it recomputed) and Reason.
type MsgReport struct {
	_        struct{} `cbor:",toarray"`
	JobID    []byte
	Pass     bool
	Evidence []byte
	Reason   string
}

func mustMsg(typ string, body any) tx.Msg {
	m, err := tx.NewMsg(typ, body)
	if err != nil { // fixed structs of plain fields always encode
		panic(err)
	}
	return m
}

// NewRegisterMsg builds an audits/register_verifier.
func NewRegisterMsg(bond coin.Amount) tx.Msg { return mustMsg(TypeRegister, MsgRegister{Bond: bond}) }

// NewUnregisterMsg builds an audits/unregister_verifier.
func NewUnregisterMsg() tx.Msg { return mustMsg(TypeUnregister, MsgUnregister{}) }

// NewReportMsg builds an audits/report.
func NewReportMsg(jobID []byte, pass bool, evidence []byte, reason string) tx.Msg {
	return mustMsg(TypeReport, MsgReport{JobID: jobID, Pass: pass, Evidence: evidence, Reason: reason})
}

// Describe implements module.Describer.
func (*Keeper) Describe(msg tx.Msg) (any, error) {
	switch msg.Type {
	case TypeRegister:
		var m MsgRegister
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"bond": m.Bond}, nil
	case TypeUnregister:
		return map[string]any{}, nil
	case TypeReport:
		var m MsgReport
		if err := msg.DecodeBody(&m); err != nil {
			return nil, err
		}
		return map[string]any{"job_id": hex.EncodeToString(m.JobID), "pass": m.Pass,
			"evidence": hex.EncodeToString(m.Evidence), "reason": m.Reason}, nil
	}
	return nil, fmt.Errorf("%w: %q", tx.ErrUnknownMsg, msg.Type)
}
