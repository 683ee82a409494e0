package coordinator

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/png"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/jobkind"
)

// TestImagesGenerationsRunsAnImageJobOnAMinerThatServesTheModel: the
// OpenAI images route says clearly that nobody generates images while no
// miner serves an image model; once one does, the request becomes an
// image job (its spec as the prompt, 16 work units for 1024×1024) and the
// answer is the miner's PNG as b64_json with its hash.
func TestImagesGenerationsRunsAnImageJobOnAMinerThatServesTheModel(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(10 * coin.Unit)
	m := h.addMiner(coin.Unit)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()

	body := `{"model":"sd-turbo","prompt":"a futuristic cityscape with flying cars","size":"1024x1024","response_format":"b64_json"}`
	code, v := call(t, srv, "POST", "/v1/images/generations", h.apiKey, body)
	e, _ := v["error"].(map[string]any)
	if code != 404 || e["code"] != "model_not_served" || !strings.Contains(e["message"].(string), "ships no image model") {
		t.Fatalf("no image miner: %d %v", code, v)
	}
	for _, c := range []struct{ name, body string }{
		{"n > 1", `{"model":"sd-turbo","prompt":"x","n":2}`},
		{"url", `{"model":"sd-turbo","prompt":"x","response_format":"url"}`},
	} {
		if code, v := call(t, srv, "POST", "/v1/images/generations", h.apiKey, c.body); code != 400 {
			t.Errorf("%s: %d %v", c.name, code, v)
		}
	}

	h.s.mu.Lock()
	m.mc.models = append(m.mc.models, "image:sd-turbo")
	h.s.mu.Unlock()
	h.chain.mu.Lock()
	h.chain.miners[0].Models = append(h.chain.miners[0].Models, "image:sd-turbo")
	h.chain.mu.Unlock()
	h.s.refreshRegistry(h.ctx)

	if code, v := call(t, srv, "POST", "/v1/images/generations", h.apiKey, `{"model":"sd-turbo","prompt":"x","size":"4096x4096"}`); code != 400 {
		t.Fatalf("oversized: %d %v", code, v)
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1024, 1024)))
	type answer struct {
		code int
		v    map[string]any
	}
	done := make(chan answer, 1)
	go func() {
		code, v := call(t, srv, "POST", "/v1/images/generations", h.apiKey, body)
		done <- answer{code, v}
	}()
	j := m.nextJob()
	spec, err := jobkind.ParseSpec(j.Prompt)
	if err != nil || j.Model != "image:sd-turbo" || spec.Image == nil || spec.Image.Size != "1024x1024" || spec.Units != 16 || j.MaxTokens != 16 {
		t.Fatalf("job %s %q: %+v %v", j.Model, j.Prompt, spec, err)
	}
	text, err := jobkind.NewImageResult(spec, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	m.finish(j, text, 16)
	a := <-done
	data, _ := a.v["data"].([]any)
	if a.code != 200 || len(data) != 1 {
		t.Fatalf("answer %d %v", a.code, a.v)
	}
	got, err := base64.StdEncoding.DecodeString(data[0].(map[string]any)["b64_json"].(string))
	if err != nil || !bytes.Equal(got, buf.Bytes()) {
		t.Fatalf("b64_json is not the miner's PNG: %v", err)
	}
	if x, _ := a.v["aitbc"].(map[string]any); x["job_id"] != j.ID || x["work_units"] != float64(16) {
		t.Fatalf("aitbc: %v", a.v["aitbc"])
	}
}
