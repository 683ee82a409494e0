package jobkind_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/jobkind"
)

// TestImageJobsAreCheckedAndPricedBySize: units are one per 65,536
// pixels; bad sizes, prompts and models are refused before any money.
func TestImageJobsAreCheckedAndPricedBySize(t *testing.T) {
	for size, units := range map[string]int{"1024x1024": 16, "512x512": 4, "64x64": 1, "2048x2048": 64, "1024x768": 12} {
		s, prompt, err := jobkind.PrepareImage("sd-turbo", "a cat", size)
		if err != nil || s.Units != units {
			t.Errorf("%s: %d units, %v", size, s.Units, err)
			continue
		}
		back, err := jobkind.ParseSpec(prompt)
		if err != nil || back.Image == nil || *back.Image != *s.Image || back.Units != units {
			t.Errorf("%s: spec does not read back: %+v %v", size, back, err)
		}
	}
	for _, c := range []struct{ model, prompt, size string }{
		{"sd-turbo", "a cat", "4096x4096"},
		{"sd-turbo", "a cat", "1024"},
		{"sd-turbo", " ", "512x512"},
		{"sd-turbo", strings.Repeat("x", jobkind.MaxImagePrompt+1), "512x512"},
		{"", "a cat", "512x512"},
		{"sd turbo", "a cat", "512x512"},
	} {
		if _, _, err := jobkind.PrepareImage(c.model, c.prompt, c.size); !errors.Is(err, jobkind.ErrBadSpec) {
			t.Errorf("%q %q %q: %v", c.model, c.prompt, c.size, err)
		}
	}
	if m, err := jobkind.ModelFor(jobkind.TypeImage, "sd-turbo"); err != nil || m != "image:sd-turbo" || !jobkind.IsImageModel(m) {
		t.Errorf("ModelFor image: %q %v", m, err)
	}
	if _, err := jobkind.ModelFor(jobkind.TypeImage, ""); !errors.Is(err, jobkind.ErrBadSpec) {
		t.Errorf("image without a model: %v", err)
	}
	if jobkind.OutputName("image:sd-turbo", "j", nil) != "j.png" {
		t.Error("an image job's output is not a .png")
	}
}

// TestImageResultIsCheckedAgainstItsHash: a result whose PNG was changed
// after its hash was written is refused.
func TestImageResultIsCheckedAgainstItsHash(t *testing.T) {
	s, _, err := jobkind.PrepareImage("sd-turbo", "a cat", "64x64")
	if err != nil {
		t.Fatal(err)
	}
	png := []byte("\x89PNG\r\n\x1a\n pretend")
	text, err := jobkind.NewImageResult(s, png)
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := jobkind.ParseImageResult(text); err != nil || string(got) != string(png) {
		t.Fatalf("round trip: %q %v", got, err)
	}
	tampered := strings.Replace(text, fmt.Sprintf(`"bytes":%d`, len(png)), fmt.Sprintf(`"bytes":%d`, len(png)+1), 1)
	if tampered == text {
		t.Fatal("no bytes field to tamper with")
	}
	if _, _, err := jobkind.ParseImageResult(tampered); err == nil {
		t.Fatal("a result whose size disagrees was accepted")
	}
	other, _ := jobkind.NewImageResult(s, []byte("other"))
	mixed := text[:strings.Index(text, `"png_base64"`)] + other[strings.Index(other, `"png_base64"`):]
	if _, _, err := jobkind.ParseImageResult(mixed); !errors.Is(err, jobkind.ErrInput) {
		t.Fatalf("another PNG under this hash: %v", err)
	}
	if _, _, err := jobkind.ParseImageResult("plain text"); err == nil {
		t.Fatal("text accepted as an image result")
	}
}

func TestParseImageSize(t *testing.T) {
	for s, ok := range map[string]bool{"1024x1024": true, "512x768": true, "64x64": true, "2048x2048": true,
		"1024": false, "1024x": false, "x1024": false, "4096x4096": false, "1000x1001": false, "32x32": false, "1024X1024": false, " 512x512": false} {
		_, _, err := jobkind.ParseImageSize(s)
		if (err == nil) != ok {
			t.Errorf("%q: %v", s, err)
		}
	}
}
