package cli_test

import (
	"encoding/json"
	"testing"

	"github.com/aitbc/aitbc/internal/config"
)

// TestDevnetConfigBTCKey: `btc = true` in a devnet config file is the
// --btc flag (before the key existed the file was refused as unknown).
func TestDevnetConfigBTCKey(t *testing.T) {
	p := writeConfig(t, "btc = true\nmaker_price = \"0.00002\"\n")
	out, _, err := run(t, "config", "show", "--service", "devnet", "--config", p, "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Config  map[string]any           `json:"config"`
		Sources map[string]config.Source `json:"sources"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.Config["btc"] != true || v.Sources["btc"] != "file" || v.Config["maker_price"] != "0.00002" {
		t.Fatalf("config show: %s", out)
	}
	out, _, err = run(t, "config", "show", "--service", "devnet", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Config["btc"] != false || v.Sources["btc"] != "default" {
		t.Fatalf("default config show: %v %s", err, out)
	}
}
