package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// OllamaTemplateMediaType and the others are the media types of the other
// layers Ollama writes next to the model (server/images.go).
const (
	OllamaTemplateMediaType = "application/vnd.ollama.image.template"
	OllamaLicenseMediaType  = "application/vnd.ollama.image.license"
	OllamaParamsMediaType   = "application/vnd.ollama.image.params"
	ollamaManifestMediaType = "application/vnd.docker.distribution.manifest.v2+json"
	ollamaConfigMediaType   = "application/vnd.docker.container.image.v1+json"
)

// PutOllamaModel writes a GGUF file into an Ollama store at dir, laid out
// byte for byte as `ollama create`/`ollama pull` lay it out: the blobs
// (sha256-<hex>: the model, a template and a license layer, the config)
// and the manifest manifests/<host>/<namespace>/<model>/<tag>. It is how
// tests and devnets make a store without Ollama; the engine itself only
// reads stores.
func PutOllamaModel(dir, name string, model []byte, template string) error {
	n, err := ParseOllamaName(name)
	if err != nil {
		return err
	}
	put := func(mediaType string, b []byte) (ollamaLayer, error) {
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:])
		if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o755); err != nil {
			return ollamaLayer{}, fmt.Errorf("engine: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256-"+h), b, 0o644); err != nil {
			return ollamaLayer{}, fmt.Errorf("engine: %w", err)
		}
		return ollamaLayer{MediaType: mediaType, Digest: "sha256:" + h, Size: int64(len(b))}, nil
	}
	var layers []ollamaLayer
	for _, l := range []struct {
		mt string
		b  []byte
	}{
		{OllamaModelMediaType, model},
		{OllamaTemplateMediaType, []byte(template)},
		{OllamaLicenseMediaType, []byte("test weights, no license")},
		{OllamaParamsMediaType, []byte(`{"stop":["<|eot_id|>"]}`)},
	} {
		if len(l.b) == 0 {
			continue
		}
		layer, err := put(l.mt, l.b)
		if err != nil {
			return err
		}
		layers = append(layers, layer)
	}
	// Ollama's config blob (server/images.go ConfigV2).
	cfg, _ := json.Marshal(map[string]any{
		"model_format": "gguf", "model_family": "llama", "model_families": []string{"llama"},
		"model_type": "", "file_type": "", "architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layers[0].Digest}},
	})
	config, err := put(ollamaConfigMediaType, cfg)
	if err != nil {
		return err
	}
	manifest, _ := json.Marshal(struct {
		SchemaVersion int           `json:"schemaVersion"`
		MediaType     string        `json:"mediaType"`
		Config        ollamaLayer   `json:"config"`
		Layers        []ollamaLayer `json:"layers"`
	}{2, ollamaManifestMediaType, config, layers})
	p := filepath.Join(dir, "manifests", n.Host, n.Namespace, n.Model, n.Tag)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if err := os.WriteFile(p, manifest, 0o644); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	return nil
}
