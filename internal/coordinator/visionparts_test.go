package coordinator

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
	"github.com/aitbc/aitbc/internal/minerproto"
)

func pngBase64(t *testing.T, side int) string {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, side, side))); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// addVisionMiner connects a miner whose hello declares vision for the
// test model.
func (h *harness) addVisionMiner(price coin.Amount) *fakeMiner {
	h.t.Helper()
	key, addr := newKey(h.t)
	h.chain.mu.Lock()
	h.chain.miners = append(h.chain.miners, ChainMiner{Address: addr, PubKey: hex.EncodeToString(key.Public().(ed25519.PublicKey)),
		Models: []string{testModel}, PricePer1k: price, Stake: 100 * coin.Unit, Status: "active"})
	h.chain.mu.Unlock()
	h.s.refreshRegistry(h.ctx)
	m := &fakeMiner{h: h, key: key, addr: addr, price: price}
	hello := &minerproto.Hello{Models: []string{testModel}, Vision: []string{testModel, "not-served"}}
	m.mc = &minerConn{addr: addr, pub: key.Public().(ed25519.PublicKey), models: hello.Models, slots: 1, backend: "fake",
		vision: visionOf(hello), send: make(chan minerproto.Envelope, 64)}
	if err := h.s.admit(m.mc); err != nil {
		h.t.Fatal(err)
	}
	return m
}

// A chat with an image part through the OpenAI route reaches the miner
// that declares vision — not the cheaper one that does not — with the
// image, and the job's prompt hash covers it.
func TestChatImagesGoOnlyToVisionMiners(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(10 * coin.Unit)
	h.addMiner(coin.Unit / 10) // cheaper, text only
	seeing := h.addVisionMiner(coin.Unit)
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	img := pngBase64(t, 4)
	body := fmt.Sprintf(`{"model":%q,"max_tokens":8,"messages":[{"role":"user","content":[{"type":"text","text":"What is in the picture?"},`+
		`{"type":"image_url","image_url":{"url":"data:image/png;base64,%s","detail":"low"}}]}]}`, testModel, img)
	type answer struct {
		code int
		v    map[string]any
	}
	done := make(chan answer, 1)
	go func() {
		code, v := call(t, srv, "POST", "/v1/chat/completions", h.apiKey, body)
		done <- answer{code, v}
	}()
	j := seeing.nextJob()
	want := []minerproto.ChatMessage{{Role: "user", Content: "What is in the picture?", Images: []string{img}}}
	if len(j.Messages) != 1 || j.Messages[0].Content != want[0].Content || len(j.Messages[0].Images) != 1 || j.Messages[0].Images[0] != img {
		t.Fatalf("the miner got %+v", j.Messages)
	}
	ph := minerproto.PromptHash("", want)
	text := minerproto.PromptHash("", []minerproto.ChatMessage{{Role: "user", Content: "What is in the picture?"}})
	if j.PromptHash != hex.EncodeToString(ph[:]) || ph == text {
		t.Fatalf("prompt hash %s, want %x (text alone %x)", j.PromptHash, ph, text)
	}
	canon, _ := json.Marshal(want)
	if !strings.Contains(string(canon), `"images":["`+img+`"]`) {
		t.Fatalf("canonical messages %s", canon)
	}
	seeing.finish(j, "a grey square", 3)
	a := <-done
	if a.code != 200 {
		t.Fatalf("chat: %d %v", a.code, a.v)
	}
}

// Without a miner that declares vision a chat with images is refused at
// submit, naming the requirement; images over the limits, not images, not
// data: URLs or not base64 are refused as invalid, on both APIs; a chat
// of text parts only is an ordinary chat.
func TestChatImagesRefusedWithoutVisionOrOverLimits(t *testing.T) {
	h := newHarness(t, releaseDelay)
	h.fund(10 * coin.Unit)
	h.addMiner(coin.Unit) // the built-in engine's kind: no vision
	srv := httptest.NewServer(h.s.Handler())
	defer srv.Close()
	img := pngBase64(t, 4)
	part := func(url string) string { return fmt.Sprintf(`{"type":"image_url","image_url":{"url":%q}}`, url) }
	openai := func(parts ...string) string {
		return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":[{"type":"text","text":"Describe it."},%s]}]}`, testModel, strings.Join(parts, ","))
	}
	big := base64.StdEncoding.EncodeToString(append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, MaxImageBytes)...))
	for _, c := range []struct {
		name, body string
		status     int
		code, want string
	}{
		{"no vision miner", openai(part("data:image/png;base64," + img)), 409, "vision_not_served", "the built-in engine has none"},
		{"remote URL", openai(part("https://example.com/cat.png")), 400, "invalid_request", "only data: URLs"},
		{"not base64", openai(part("data:image/png;base64,@@@")), 400, "invalid_request", "not standard base64"},
		{"not an image", openai(part("data:image/png;base64," + base64.StdEncoding.EncodeToString([]byte("plain text, not a picture")))), 400, "invalid_request", "not PNG, JPEG, GIF or WebP"},
		{"too many", openai(strings.Repeat(part("data:image/png;base64,"+img)+",", MaxImagesPerJob) + part("data:image/png;base64,"+img)), 400, "invalid_request", "at most 4 images"},
		{"too large", openai(part("data:image/png;base64," + big)), 400, "invalid_request", "over"},
		{"unknown part", openai(`{"type":"input_audio","input_audio":{}}`), 400, "invalid_request", "part type"},
	} {
		code, v := call(t, srv, "POST", "/v1/chat/completions", h.apiKey, c.body)
		e, _ := v["error"].(map[string]any)
		msg, _ := e["message"].(string)
		if code != c.status || e["code"] != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %v, want %d %s with %q", c.name, code, v, c.status, c.code, c.want)
		}
	}
	// Ollama's images list: the same refusal, in Ollama's error shape.
	code, v := call(t, srv, "POST", "/api/chat", h.apiKey, fmt.Sprintf(`{"model":%q,"stream":false,"messages":[{"role":"user","content":"Describe it.","images":[%q]}]}`, testModel, img))
	if msg, _ := v["error"].(string); code != 409 || !strings.Contains(msg, "accepts image inputs") {
		t.Fatalf("ollama: %d %v", code, v)
	}
	code, v = call(t, srv, "POST", "/api/chat", h.apiKey, fmt.Sprintf(`{"model":%q,"stream":false,"messages":[{"role":"user","content":"x","images":["bm90IGFuIGltYWdl"]}]}`, testModel))
	if msg, _ := v["error"].(string); code != 400 || !strings.Contains(msg, "not PNG") {
		t.Fatalf("ollama, not an image: %d %v", code, v)
	}
	if js, err := h.s.Jobs(h.ctx, h.tenant, 10); err != nil || len(js) != 0 {
		t.Fatalf("a refused chat left a job: %v %v", js, err)
	}
}
