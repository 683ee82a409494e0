package engine_test

import (
	"context"
	"fmt"

	"github.com/aitbc/aitbc/internal/engine"
)

// Greedy decoding with the embedded model reproduces llama2.c's output.
func ExampleModel_Generate() {
	m, err := engine.LoadDefault()
	if err != nil {
		panic(err)
	}
	res, err := m.Generate(context.Background(), engine.GenerateRequest{Prompt: "It was", MaxTokens: 7}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.PromptTokens, res.Tokens)
	fmt.Printf("%q\n", res.Text)
	// Output:
	// [1 689 318] [261 958 967 687 284 263 576]
	// " awkward of the French"
}

// A model's layers can run in separate sessions, for example on two
// machines; the hidden state is what travels between them.
func ExampleSession_Layers() {
	m, _ := engine.LoadDefault()
	front, _ := m.NewSession(engine.SessionOptions{FirstLayer: 0, LastLayer: 2})
	back, _ := m.NewSession(engine.SessionOptions{FirstLayer: 2, LastLayer: 4})
	defer front.Close()
	defer back.Close()

	hidden := make([]float32, m.Config().Dim)
	token := m.Tokenizer().BOS()
	for pos := range 4 {
		front.Embed(token, hidden)
		front.Layers(0, 2, hidden, pos)
		back.Layers(2, 4, hidden, pos)
		logits, _ := back.Head(hidden)
		token = argmax(logits)
		fmt.Print(token, " ")
	}
	fmt.Println()
	// Output:
	// 490 975 973 974
}

// A Llama 3 conversation rendered as llama.cpp renders it, ready for the
// assistant's reply (BOS is added by the tokenizer, not written here).
func ExampleRenderChat() {
	out, err := engine.RenderChat("llama3", []engine.ChatMessage{
		{Role: "system", Content: "Be brief."},
		{Role: "user", Content: " Hi "},
	}, true)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", out)
	// Output:
	// "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
}
