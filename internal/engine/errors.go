package engine

import "errors"

// Sentinel errors. Functions wrap them with details; test with errors.Is.
var (
	// ErrUnknownModel means no model of that name is known.
	ErrUnknownModel = errors.New("engine: unknown model")
	// ErrModelExists means an import would overwrite a model.
	ErrModelExists = errors.New("engine: model already exists")
	// ErrInvalidName means a model name has characters or a length that
	// cannot be a directory name.
	ErrInvalidName = errors.New("engine: invalid model name")
	// ErrUnknownFormat means a file is neither a GGUF file nor a llama2.c
	// checkpoint.
	ErrUnknownFormat = errors.New("engine: not a GGUF file or llama2.c checkpoint")
	// ErrTruncated means a file ends before what its header describes.
	ErrTruncated = errors.New("engine: truncated file")
	// ErrSizeMismatch means the sizes a header declares disagree with the
	// file or with each other (extra bytes, wrong tensor shapes).
	ErrSizeMismatch = errors.New("engine: header sizes do not match the file")
	// ErrInvalidHeader means a header field is out of range or inconsistent.
	ErrInvalidHeader = errors.New("engine: invalid header")
	// ErrUnsupported means a well-formed file uses something the engine does
	// not implement (architecture, tensor type, tokenizer, version).
	ErrUnsupported = errors.New("engine: unsupported model")
	// ErrTokenizer means a tokenizer file is malformed.
	ErrTokenizer = errors.New("engine: invalid tokenizer")
	// ErrVocabMismatch means the tokenizer's vocabulary size differs from
	// the model's.
	ErrVocabMismatch = errors.New("engine: vocabulary size differs between model and tokenizer")
	// ErrPromptTooLong means the prompt leaves no room in the context.
	ErrPromptTooLong = errors.New("engine: prompt longer than the context")
	// ErrMaxTokens means the requested token count is negative or does not
	// fit in the context after the prompt.
	ErrMaxTokens = errors.New("engine: max tokens beyond the context")
	// ErrTemperature means the temperature is outside [0, 2].
	ErrTemperature = errors.New("engine: temperature out of range")
	// ErrTopP means top-p is outside (0, 1].
	ErrTopP = errors.New("engine: top-p out of range")
	// ErrThreads means a negative thread count.
	ErrThreads = errors.New("engine: invalid thread count")
	// ErrLayerRange means a layer range outside the model or the session.
	ErrLayerRange = errors.New("engine: layer range out of bounds")
	// ErrPosition means a position outside the session's context, or one
	// that skips positions whose KV cache entries were never computed.
	ErrPosition = errors.New("engine: position out of order or beyond the context")
	// ErrTokenID means a token id outside the vocabulary.
	ErrTokenID = errors.New("engine: token id outside the vocabulary")
	// ErrChatTemplate means a model's chat template is not one of the
	// families the engine renders (see DetectChatTemplate).
	ErrChatTemplate = errors.New("engine: unsupported chat template")
	// ErrNoChatTemplate means chat messages were given to a model that has
	// no chat template.
	ErrNoChatTemplate = errors.New("engine: the model has no chat template")
	// ErrChatMessages means chat messages that cannot be rendered: none,
	// too many, or given together with a prompt.
	ErrChatMessages = errors.New("engine: invalid chat messages")
	// ErrBuffer means a hidden-state buffer of the wrong length.
	ErrBuffer = errors.New("engine: buffer has the wrong length")
)
