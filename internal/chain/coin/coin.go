// Package coin handles amounts of the native token. On chain every amount is
// an unsigned integer of base units (1 AITBC = 10^6 base units); users and
// APIs read and write decimal AITBC ("1000", "0.25").
package coin

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Decimals is the number of decimal places of one AITBC.
const Decimals = 6

// Unit is one AITBC in base units.
const Unit Amount = 1_000_000

// Denom is the token's ticker.
const Denom = "AITBC"

// ErrInvalid is returned for amounts that cannot be parsed or are out of range.
var ErrInvalid = errors.New("invalid amount")

// ErrOverflow is returned when arithmetic exceeds the uint64 range.
var ErrOverflow = errors.New("amount overflow")

// Amount is a number of base units.
type Amount uint64

// Parse reads a non-negative decimal AITBC amount with at most six decimal
// places. Signs, exponents, spaces and other characters are refused.
func Parse(s string) (Amount, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if s[0] == '-' {
		return 0, fmt.Errorf("%w %q: negative", ErrInvalid, s)
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" && frac == "" || hasDot && frac == "" {
		return 0, fmt.Errorf("%w %q: not a number", ErrInvalid, s)
	}
	if !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("%w %q: not a decimal number", ErrInvalid, s)
	}
	if len(frac) > Decimals {
		return 0, fmt.Errorf("%w %q: more than %d decimal places", ErrInvalid, s, Decimals)
	}
	var w uint64
	if whole != "" {
		var err error
		w, err = strconv.ParseUint(whole, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w %q: too large", ErrInvalid, s)
		}
	}
	hi, lo := bits.Mul64(w, uint64(Unit))
	if hi != 0 {
		return 0, fmt.Errorf("%w %q: too large", ErrInvalid, s)
	}
	var f uint64
	if frac != "" {
		f, _ = strconv.ParseUint(frac+strings.Repeat("0", Decimals-len(frac)), 10, 64)
	}
	sum, carry := bits.Add64(lo, f, 0)
	if carry != 0 {
		return 0, fmt.Errorf("%w %q: too large", ErrInvalid, s)
	}
	return Amount(sum), nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String formats a as decimal AITBC without trailing zeros ("1000", "0.25").
func (a Amount) String() string {
	w, f := uint64(a)/uint64(Unit), uint64(a)%uint64(Unit)
	if f == 0 {
		return strconv.FormatUint(w, 10)
	}
	fs := strings.TrimRight(fmt.Sprintf("%06d", f), "0")
	return strconv.FormatUint(w, 10) + "." + fs
}

// Float returns a as a float64 number of AITBC, for display only.
func (a Amount) Float() float64 { return float64(a) / float64(Unit) }

// Add returns a+b or ErrOverflow.
func (a Amount) Add(b Amount) (Amount, error) {
	s, c := bits.Add64(uint64(a), uint64(b), 0)
	if c != 0 {
		return 0, ErrOverflow
	}
	return Amount(s), nil
}

// Sub returns a-b; ok is false when b > a.
func (a Amount) Sub(b Amount) (Amount, bool) {
	if b > a {
		return 0, false
	}
	return a - b, true
}

// MulDiv returns a*num/den rounded down, without intermediate overflow.
func (a Amount) MulDiv(num, den uint64) Amount {
	hi, lo := bits.Mul64(uint64(a), num)
	if den == 0 || hi >= den {
		return Amount(math.MaxUint64)
	}
	q, _ := bits.Div64(hi, lo, den)
	return Amount(q)
}

// MarshalJSON writes the amount as a decimal string, so no precision is lost
// in JavaScript clients.
func (a Amount) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON accepts a decimal string or a JSON number.
func (a *Amount) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}
