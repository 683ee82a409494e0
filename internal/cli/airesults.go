package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/aitbc/aitbc/internal/coordinator"
	"github.com/aitbc/aitbc/internal/dataproc"
	"github.com/aitbc/aitbc/internal/jobkind"
)

// savedResult is what `ai-results --output-dir` reports.
type savedResult struct {
	JobID  string `json:"job_id"`
	Status string `json:"status"`
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Bytes  int    `json:"bytes"`
	// ReceiptResultHash is the receipt's result hash: equal to SHA256,
	// the file is what the miner signed for.
	ReceiptResultHash string `json:"receipt_result_hash,omitempty"`
	// PNGSHA256 is an image job's PNG hash, which the signed result names.
	PNGSHA256 string `json:"png_sha256,omitempty"`
	// ModelSHA256 is a fine-tuning job's GGUF hash, which the signed
	// result names; ResultFile is where the result itself is saved.
	ModelSHA256 string `json:"model_sha256,omitempty"`
	ResultFile  string `json:"result_file,omitempty"`
	// FileSHA256 is a stored model file's or report's hash, which the
	// signed result (saved as ResultFile) names.
	FileSHA256 string `json:"file_sha256,omitempty"`
}

// saveResult writes a job's result (a report, a model file, or text) into
// dir under a name for its kind, and checks it against the receipt.
// fileDownloader fetches a file the tenant holds from the coordinator.
type fileDownloader interface {
	DownloadFile(ctx context.Context, hash string, w io.Writer) (int64, error)
}

func saveResult(ctx context.Context, g *Globals, c fileDownloader, v coordinator.JobView, dir string) error {
	if v.Result == nil {
		return fmt.Errorf("job %s has no result to save (status %s)", v.JobID, v.Status)
	}
	text := *v.Result
	sum := sha256.Sum256([]byte(text))
	out := savedResult{JobID: v.JobID, Status: v.Status, SHA256: hex.EncodeToString(sum[:]), Bytes: len(text)}
	if v.Receipt != nil {
		out.ReceiptResultHash = v.Receipt.ResultHash
		if out.ReceiptResultHash != out.SHA256 {
			return fmt.Errorf("job %s: the result's sha256 %s is not the receipt's %s", v.JobID, out.SHA256, out.ReceiptResultHash)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out.File = filepath.Join(dir, jobkind.OutputName(v.Model, v.JobID, reportSpec(v.Model, text)))
	data := []byte(text)
	if jobkind.IsImageModel(v.Model) {
		// The signed result names the PNG's hash; the PNG is checked
		// against it and saved as itself.
		res, png, err := jobkind.ParseImageResult(text)
		if err != nil {
			return fmt.Errorf("job %s: %w", v.JobID, err)
		}
		if png == nil { // the miner stored it with the coordinator, for this tenant
			var buf bytes.Buffer
			if _, err := c.DownloadFile(ctx, res.SHA256, &buf); err != nil {
				return fmt.Errorf("job %s: the image %s: %w", v.JobID, res.SHA256, err)
			}
			if png = buf.Bytes(); res.CheckImage(png) != nil {
				return fmt.Errorf("job %s: %w", v.JobID, res.CheckImage(png))
			}
		}
		data, out.PNGSHA256, out.Bytes = png, res.SHA256, len(png)
	}
	if fr, ok := jobkind.ParseFileResult(text); ok && (v.Model == jobkind.ModelCustomClassifier || v.Model == jobkind.ModelDataProcessing) {
		// The miner stored the model file or report with the coordinator;
		// the signed result names its hash. (An inline result is the file
		// itself, saved as it is.)
		var buf bytes.Buffer
		if _, err := c.DownloadFile(ctx, fr.SHA256, &buf); err != nil {
			return fmt.Errorf("job %s: the result file %s: %w", v.JobID, fr.SHA256, err)
		}
		if err := fr.CheckFile(buf.Bytes()); err != nil {
			return fmt.Errorf("job %s: %w", v.JobID, err)
		}
		out.File = filepath.Join(dir, jobkind.OutputName(v.Model, v.JobID, fr.OutputSpec()))
		out.ResultFile = filepath.Join(dir, v.JobID+".result.json")
		if err := os.WriteFile(out.ResultFile, []byte(text), 0o644); err != nil {
			return err
		}
		data, out.FileSHA256, out.Bytes = buf.Bytes(), fr.SHA256, buf.Len()
	}
	if jobkind.IsFinetuneModel(v.Model) {
		// The signed result names the GGUF's hash; the GGUF is fetched
		// from the coordinator's file store, checked, and saved beside it.
		res, err := jobkind.ParseModelResult(text)
		if err != nil {
			return fmt.Errorf("job %s: %w", v.JobID, err)
		}
		if res.Bytes > jobkind.MaxModelBytes {
			return fmt.Errorf("job %s: the model file is %d bytes, over the limit of %d", v.JobID, res.Bytes, jobkind.MaxModelBytes)
		}
		var buf bytes.Buffer
		if _, err := c.DownloadFile(ctx, res.SHA256, &buf); err != nil {
			return fmt.Errorf("job %s: the model file %s: %w", v.JobID, res.SHA256, err)
		}
		if err := res.CheckFile(buf.Bytes()); err != nil {
			return fmt.Errorf("job %s: %w", v.JobID, err)
		}
		out.ResultFile = filepath.Join(dir, v.JobID+".finetune.json")
		if err := os.WriteFile(out.ResultFile, []byte(text), 0o644); err != nil {
			return err
		}
		data, out.ModelSHA256, out.Bytes = buf.Bytes(), res.SHA256, buf.Len()
	}
	if err := os.WriteFile(out.File, data, 0o644); err != nil {
		return err
	}
	return g.Print(out, func(w io.Writer) {
		fmt.Fprintf(w, "%s (%d bytes, sha256 %s", out.File, out.Bytes, out.SHA256)
		if out.ReceiptResultHash != "" {
			fmt.Fprint(w, ", as in the signed receipt")
		}
		if out.PNGSHA256 != "" {
			fmt.Fprintf(w, "; PNG sha256 %s, as the signed result names it", out.PNGSHA256)
		}
		if out.FileSHA256 != "" {
			fmt.Fprintf(w, "; file sha256 %s, as the signed result %s names it", out.FileSHA256, out.ResultFile)
		}
		if out.ModelSHA256 != "" {
			fmt.Fprintf(w, "; GGUF sha256 %s, as the signed result %s names it; aitbc model import %s", out.ModelSHA256, out.ResultFile, out.File)
		}
		fmt.Fprintln(w, ")")
	})
}

// reportSpec tells a report's format from its first bytes (the job view
// does not carry the spec).
func reportSpec(model, text string) *jobkind.Spec {
	if model != jobkind.ModelDataProcessing {
		return nil
	}
	out := "csv"
	switch {
	case strings.HasPrefix(text, "{"):
		out = "json"
	case strings.HasPrefix(text, "# "):
		out = "markdown"
	}
	return &jobkind.Spec{Data: &dataproc.Spec{Output: out}}
}
