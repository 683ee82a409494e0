package engine

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
