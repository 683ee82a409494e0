package backend_test

import (
	"context"
	"fmt"

	"github.com/aitbc/aitbc/internal/miner/backend"
)

// A miner runs a job on the built-in engine and streams its tokens.
func ExampleBuiltin_Generate() {
	b := backend.NewBuiltin("", backend.BuiltinOptions{})
	defer b.Close()
	req := backend.Request{Model: "tolstoy-1m", Prompt: "It was", MaxTokens: 6} // temperature 0: greedy
	if err := req.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	res, err := b.Generate(context.Background(), req, func(text string) error {
		fmt.Printf("[%s]", text)
		return nil
	})
	fmt.Println()
	fmt.Println(res.TokensIn, res.TokensOut, res.FinishReason, err)
	// Output:
	// [ a][w][k][ward][ of][ the]
	// 3 6 length <nil>
}

func ExampleFlattenMessages() {
	fmt.Println(backend.FlattenMessages([]backend.ChatMessage{
		{Role: "system", Content: "You write like Tolstoy."},
		{Role: "user", Content: "Who is Natasha?"},
	}))
	// Output:
	// system: You write like Tolstoy.
	// user: Who is Natasha?
	// assistant:
}
