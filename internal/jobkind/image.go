package jobkind

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Image generation as a job: the job's model is ImageModelPrefix and the
// image model a miner's images backend serves ("image:sd-turbo"), its
// prompt the canonical JSON Spec with Type "image" and the text prompt and
// size in Image, and its result an ImageResult: the PNG (base64) with its
// SHA-256, so that the receipt's result hash commits to the PNG's hash. No
// image model ships with AITBC, so a devnet has no miner for these jobs
// and says so before any money moves (docs/JOBS.md, "Images").

// TypeImage is the job type of image generation (`ai-submit --type image`,
// or `--type inference --resolution WxH`).
const TypeImage = "image"

// ImageModelPrefix marks a job's model as an image model.
const ImageModelPrefix = "image:"

// pixelsPerUnit: one work unit per 65,536 pixels (a 1024×1024 image is 16
// units, 512×512 is 4), priced as output tokens like every kind's units.
const pixelsPerUnit = 65536

// MaxImagePrompt bounds an image job's text prompt.
const MaxImagePrompt = 4000

// ImageSpec is an image job's parameters.
type ImageSpec struct {
	Model  string `json:"model"` // the image model, without the prefix
	Prompt string `json:"prompt"`
	Size   string `json:"size"` // "1024x1024"
}

// IsImageModel reports whether a job's model is an image model.
func IsImageModel(model string) bool {
	return strings.HasPrefix(model, ImageModelPrefix) && len(model) > len(ImageModelPrefix)
}

// ImageModel is the job model of image model m.
func ImageModel(m string) string { return ImageModelPrefix + m }

// PrepareImage checks an image job and returns its spec and the prompt to
// submit (canonical JSON), with its work units.
func PrepareImage(model, prompt, size string) (Spec, string, error) {
	s := Spec{Type: TypeImage, Image: &ImageSpec{Model: strings.TrimPrefix(model, ImageModelPrefix), Prompt: prompt, Size: size}}
	units, err := imageUnits(s)
	if err != nil {
		return s, "", err
	}
	s.Units = units
	b, err := json.Marshal(s)
	if err != nil {
		return s, "", err
	}
	return s, string(b), nil
}

func imageUnits(s Spec) (int, error) {
	im := s.Image
	switch {
	case im == nil || s.Data != nil || s.Train != nil || s.Input != (FileRef{}):
		return 0, fmt.Errorf("%w: an image job carries the image parameters only", ErrBadSpec)
	case im.Model == "" || len(im.Model) > 100 || strings.ContainsAny(im.Model, " \t\n"):
		return 0, fmt.Errorf("%w: image jobs name the image model (--model, e.g. sd-turbo), 1-100 characters without spaces", ErrBadSpec)
	case strings.TrimSpace(im.Prompt) == "" || len(im.Prompt) > MaxImagePrompt:
		return 0, fmt.Errorf("%w: an image prompt of 1 to %d bytes", ErrBadSpec, MaxImagePrompt)
	}
	w, h, err := ParseImageSize(im.Size)
	if err != nil {
		return 0, fmt.Errorf("%w: --resolution: %v", ErrBadSpec, err)
	}
	return ceilDiv(w*h, pixelsPerUnit), nil
}

// MaxImageBytes bounds one generated image (a generated 2048×2048 PNG is
// typically a few MiB); inline in a result (base64) it still fits a
// miner's 16 MiB result message.
const MaxImageBytes = 12 << 20

// MaxImageSide is the largest width or height an image job may ask for.
const MaxImageSide = 2048

// ErrImageSize is a malformed or out-of-range size ("1024x1024").
var ErrImageSize = errors.New("jobkind: image size must be WIDTHxHEIGHT, each 64 to 2048 and a multiple of 8")

var sizeRE = regexp.MustCompile(`^([0-9]{2,4})x([0-9]{2,4})$`)

// ParseImageSize reads "1024x1024". The miner's images backend checks the
// same rules (backend.Images).
func ParseImageSize(s string) (w, h int, err error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, fmt.Errorf("%w: %q", ErrImageSize, s)
	}
	w, _ = strconv.Atoi(m[1])
	h, _ = strconv.Atoi(m[2])
	if w < 64 || h < 64 || w > MaxImageSide || h > MaxImageSide || w%8 != 0 || h%8 != 0 {
		return 0, 0, fmt.Errorf("%w: %q", ErrImageSize, s)
	}
	return w, h, nil
}

// ImageResult is an image job's result text.
type ImageResult struct {
	Type   string `json:"type"` // "image"
	Model  string `json:"model"`
	Size   string `json:"size"`
	SHA256 string `json:"sha256"` // of the PNG
	Bytes  int    `json:"bytes"`
	// PNG is the image inline (base64), when the coordinator keeps no
	// files; otherwise it is empty and the PNG is in the coordinator's
	// file store under SHA256, held for the job's customer.
	PNG string `json:"png_base64,omitempty"`
}

// ResultFileKey is what a miner signs (minerproto.FileDigest) to upload
// a job's result file: distinct from the input file's hash, so that a
// signature for one cannot be used for the other.
func ResultFileKey(sha256 string) string { return "result:" + sha256 }

// NewStoredImageResult is the result text of a PNG the miner stored in
// the coordinator's file store.
func NewStoredImageResult(s Spec, sha256 string, n int) (string, error) {
	b, err := json.Marshal(ImageResult{Type: TypeImage, Model: s.Image.Model, Size: s.Image.Size, SHA256: sha256, Bytes: n})
	return string(b), err
}

// NewImageResult is the result text of PNG png made for spec s.
func NewImageResult(s Spec, png []byte) (string, error) {
	sum := sha256.Sum256(png)
	b, err := json.Marshal(ImageResult{Type: TypeImage, Model: s.Image.Model, Size: s.Image.Size, SHA256: hex.EncodeToString(sum[:]), Bytes: len(png), PNG: base64.StdEncoding.EncodeToString(png)})
	return string(b), err
}

// ParseImageResult reads an image job's result and returns the PNG,
// checked against the hash the result names, or nil when the PNG is in
// the coordinator's file store (fetch it by r.SHA256 and check it with
// CheckImage).
func ParseImageResult(text string) (ImageResult, []byte, error) {
	var r ImageResult
	if err := json.Unmarshal([]byte(text), &r); err != nil || r.Type != TypeImage || len(r.SHA256) != 64 {
		return r, nil, fmt.Errorf("%w: not an image result", ErrBadSpec)
	}
	if r.PNG == "" {
		return r, nil, nil
	}
	png, err := base64.StdEncoding.DecodeString(r.PNG)
	if err != nil {
		return r, nil, fmt.Errorf("%w: image result: %v", ErrBadSpec, err)
	}
	return r, png, r.CheckImage(png)
}

// CheckImage checks png against the hash and size the result names.
func (r ImageResult) CheckImage(png []byte) error {
	if sum := sha256.Sum256(png); hex.EncodeToString(sum[:]) != r.SHA256 || len(png) != r.Bytes {
		return fmt.Errorf("%w: the PNG's sha256 is %x (%d bytes), the result says %s (%d bytes)", ErrInput, sum, len(png), r.SHA256, r.Bytes)
	}
	return nil
}
