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
	"github.com/aitbc/aitbc/internal/httpx"
	"github.com/aitbc/aitbc/internal/jobkind"
	"github.com/aitbc/aitbc/internal/miner"
	"github.com/aitbc/aitbc/internal/minerproto"
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

	serveImages(h, m, 0)

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

// serveImages makes the i-th registered miner m offer image:sd-turbo.
func serveImages(h *harness, m *fakeMiner, i int) {
	h.s.mu.Lock()
	m.mc.models = append(m.mc.models, "image:sd-turbo")
	h.s.mu.Unlock()
	h.chain.mu.Lock()
	h.chain.miners[i].Models = append(h.chain.miners[i].Models, "image:sd-turbo")
	h.chain.mu.Unlock()
	h.s.refreshRegistry(h.ctx)
}

// TestAnImageJobsPNGTravelsThroughTheFileStore: the miner's real upload
// client stores a PNG larger than one request body in pieces, signed for
// the job it runs (another miner cannot); the result names only its hash,
// and the OpenAI answer and the customer's file download give the PNG.
func TestAnImageJobsPNGTravelsThroughTheFileStore(t *testing.T) {
	h := newHarness(t, releaseDelay, withFiles(t, 16<<20, 64<<20))
	h.fund(10 * coin.Unit)
	m := h.addMiner(coin.Unit)
	serveImages(h, m, 0)
	srv := httptest.NewServer(httpx.Guard(h.s.Handler(), httpx.Limits{MaxBody: 1 << 20}))
	defer srv.Close()

	// Noise compresses badly: a PNG of a few MiB, several upload pieces.
	img := image.NewRGBA(image.Rect(0, 0, 1024, 1024))
	x := uint32(1)
	for i := range img.Pix {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		img.Pix[i] = byte(x)
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	if buf.Len() < 2<<20 {
		t.Fatalf("PNG of %d bytes: too small to need pieces", buf.Len())
	}
	type answer struct {
		code int
		v    map[string]any
	}
	done := make(chan answer, 1)
	go func() {
		code, v := call(t, srv, "POST", "/v1/images/generations", h.apiKey, `{"model":"sd-turbo","prompt":"noise","size":"1024x1024"}`)
		done <- answer{code, v}
	}()
	j := m.nextJob()
	spec, err := jobkind.ParseSpec(j.Prompt)
	if err != nil {
		t.Fatal(err)
	}
	other := h.addMiner(coin.Unit)
	if _, err := (&miner.HTTPFiles{Coordinator: srv.URL, Key: minerproto.KeySigner(other.key), Now: h.clock.Now}).Upload(h.ctx, j.ID, buf.Bytes()); err == nil || !strings.Contains(err.Error(), "not assigned") {
		t.Fatalf("another miner stored a result: %v", err)
	}
	up := &miner.HTTPFiles{Coordinator: srv.URL, Key: minerproto.KeySigner(m.key), Now: h.clock.Now}
	sha, err := up.Upload(h.ctx, j.ID, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	text, err := jobkind.NewStoredImageResult(spec, sha, buf.Len())
	if err != nil || strings.Contains(text, "png_base64") {
		t.Fatalf("result %q: %v", text, err)
	}
	m.finish(j, text, 16)
	a := <-done
	data, _ := a.v["data"].([]any)
	if a.code != 200 || len(data) != 1 {
		t.Fatalf("answer %d %v", a.code, a.v)
	}
	got, err := base64.StdEncoding.DecodeString(data[0].(map[string]any)["b64_json"].(string))
	if err != nil || !bytes.Equal(got, buf.Bytes()) {
		t.Fatalf("b64_json is not the stored PNG: %v", err)
	}
	rc, info, err := h.s.OpenFile(h.ctx, h.tenant.ID, sha)
	if err != nil || info.Size != int64(buf.Len()) {
		t.Fatalf("the customer's copy: %+v %v", info, err)
	}
	rc.Close()
}
