package cli

import "testing"

func TestParseFeePercent(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "2.5": 250, "2.50": 250, "2.05": 205, "100": 10_000, "100.01": 10_001, "7%": 700} {
		if got, err := parseFeePercent(in); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "2.", ".5", "2.555", "x", "1e2"} {
		if got, err := parseFeePercent(in); err == nil {
			t.Errorf("%q: %d, want an error", in, got)
		}
	}
}
