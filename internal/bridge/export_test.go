package bridge

// WithFailpoint returns c with a failpoint: the daemon calls f at each
// named point ("attested", "signed", "broadcast", "recorded") and stops its step with
// f's error, leaving its state file as a crash there would.
func WithFailpoint(c Config, f func(point string) error) Config {
	c.failpoint = f
	return c
}
