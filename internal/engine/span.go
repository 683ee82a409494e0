package engine

import "slices"

// EncodePrompt tokenizes a prompt as Generate does (with BOS when the
// model wants one; an empty prompt is BOS alone), so that a driver that
// runs the model's layers elsewhere (internal/swarm) starts from the same
// tokens.
func (m *Model) EncodePrompt(text string) []int {
	ids := m.tok.Encode(text, m.addBOS)
	if len(ids) == 0 {
		ids = []int{m.tok.BOS()}
	}
	return ids
}

// StopTokens are the token ids that end a generation: BOS, EOS and the
// chat template's end-of-turn tokens.
func (m *Model) StopTokens() []int {
	return append([]int{m.tok.BOS(), m.tok.EOS()}, slices.Clone(m.endTurn)...)
}
