package coin_test

import (
	"errors"
	"math"
	"testing"

	"github.com/aitbc/aitbc/internal/chain/coin"
)

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want coin.Amount
		out  string
	}{
		{"0", 0, "0"},
		{"1000", 1000 * coin.Unit, "1000"},
		{"0.25", 250_000, "0.25"},
		{".5", 500_000, "0.5"},
		{"1.000001", 1_000_001, "1.000001"},
		{"18446744073709", 18446744073709 * coin.Unit, "18446744073709"},
	} {
		got, err := coin.Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			continue
		}
		if s := got.String(); s != tc.out {
			t.Errorf("String(%d) = %q, want %q", got, s, tc.out)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, s := range []string{"", "-1", "-0.5", "abc", "1e3", "1.", ".", "1.0000001", " 1", "1,5", "+1", "0x10", "99999999999999999999", "18446744073710"} {
		if _, err := coin.Parse(s); !errors.Is(err, coin.ErrInvalid) {
			t.Errorf("Parse(%q) err = %v, want ErrInvalid", s, err)
		}
	}
}

func TestArithmetic(t *testing.T) {
	if _, err := coin.Amount(math.MaxUint64).Add(1); !errors.Is(err, coin.ErrOverflow) {
		t.Fatal("overflow not detected")
	}
	if _, ok := coin.Amount(1).Sub(2); ok {
		t.Fatal("negative result allowed")
	}
	if got := coin.Amount(1001).MulDiv(5000, 10000); got != 500 {
		t.Fatalf("MulDiv = %d, want 500 (rounded down)", got)
	}
	if got := coin.Amount(math.MaxUint64).MulDiv(3, 4); got != coin.Amount(uint64(math.MaxUint64)/4*3+2) {
		t.Fatalf("MulDiv without intermediate overflow = %d", got)
	}
}
