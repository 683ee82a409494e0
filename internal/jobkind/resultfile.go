package jobkind

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/aitbc/aitbc/internal/dataproc"
)

// MaxResultFileBytes bounds a classifier's model file or a report that a
// miner stores with the coordinator (the coordinator refuses more).
const MaxResultFileBytes = 16 << 20

// TypeResultFile is FileResult's type.
const TypeResultFile = "result_file"

// FileResult is the result text of a classifier or data-processing job
// whose output the miner stored in the coordinator's file store: it names
// the file's SHA-256 and size, so the receipt's result hash commits to
// the file. A miner whose coordinator keeps no files sends the output
// itself as the result text instead (the older, inline form).
type FileResult struct {
	Type   string `json:"type"`   // "result_file"
	Model  string `json:"model"`  // the job's model: custom-classifier, data-processing
	Format string `json:"format"` // "model" (a classifier), or the report's json, csv, markdown
	SHA256 string `json:"sha256"`
	Bytes  int    `json:"bytes"`
}

// NewFileResult is the result text naming out, the output of a job of
// model with spec s.
func NewFileResult(model string, s Spec, out []byte) (string, error) {
	format := "model"
	if model == ModelDataProcessing {
		if s.Data == nil {
			return "", fmt.Errorf("%w: a data-processing job needs data parameters", ErrBadSpec)
		}
		format = s.Data.Output
		if format == "" {
			format = "json"
		}
	}
	sum := sha256.Sum256(out)
	b, err := json.Marshal(FileResult{Type: TypeResultFile, Model: model, Format: format, SHA256: hex.EncodeToString(sum[:]), Bytes: len(out)})
	return string(b), err
}

// ParseFileResult reads a stored result; ok is false for any other text
// (an inline report or model file).
func ParseFileResult(text string) (r FileResult, ok bool) {
	if len(text) > 1024 || len(text) == 0 || text[0] != '{' {
		return r, false
	}
	if err := json.Unmarshal([]byte(text), &r); err != nil || r.Type != TypeResultFile || len(r.SHA256) != 64 {
		return FileResult{}, false
	}
	return r, r.Bytes >= 0 && r.Bytes <= MaxResultFileBytes
}

// OutputSpec is the spec OutputName needs to name the stored file.
func (r FileResult) OutputSpec() *Spec {
	if r.Model != ModelDataProcessing {
		return nil
	}
	return &Spec{Data: &dataproc.Spec{Output: r.Format}}
}

// CheckFile checks the file against the hash and size the result names.
func (r FileResult) CheckFile(b []byte) error {
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != r.SHA256 || len(b) != r.Bytes {
		return fmt.Errorf("%w: the result file's sha256 is %x (%d bytes), the result says %s (%d bytes)", ErrInput, sum, len(b), r.SHA256, r.Bytes)
	}
	return nil
}
