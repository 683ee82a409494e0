// Package train trains small classifiers on tabular data — multinomial
// logistic regression and a one-hidden-layer MLP — deterministically: the
// same data, seed and parameters give bit-identical weights on any machine
// and with any number of goroutines, because every sum is taken in a fixed
// order (gradients are computed per fixed shard of a batch and the shards
// added in index order, as Gensyn's RepOps fixes reduction order). A
// training job can therefore be verified by running it again and comparing
// weight hashes. Pure Go, float64, no I/O but what the caller hands in.
// Imported by the miner's training executor and the CLI.
package train

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Errors of the trainer; test them with errors.Is.
var (
	ErrInvalidCSV   = errors.New("train: invalid CSV")
	ErrNoLabel      = errors.New("train: label column not found")
	ErrTooLarge     = errors.New("train: dataset over the limit")
	ErrTooFewRows   = errors.New("train: too few rows")
	ErrNotNumeric   = errors.New("train: feature is not numeric")
	ErrOneClass     = errors.New("train: the label has a single class")
	ErrInvalidParam = errors.New("train: invalid parameter")
	ErrBadModel     = errors.New("train: invalid model file")
	ErrColumns      = errors.New("train: input columns do not match the model")
)

// Limits bound what a dataset may hold.
type Limits struct {
	MaxRows     int // 1,000,000
	MaxFeatures int // 512
	MaxClasses  int // 256
}

func (l Limits) withDefaults() Limits {
	if l.MaxRows == 0 {
		l.MaxRows = 1_000_000
	}
	if l.MaxFeatures == 0 {
		l.MaxFeatures = 512
	}
	if l.MaxClasses == 0 {
		l.MaxClasses = 256
	}
	return l
}

// Dataset is a table of numeric features and a class label per row.
type Dataset struct {
	Features []string  // column names, in file order
	Label    string    // the label column's name
	Classes  []string  // distinct labels, sorted
	X        []float64 // rows × len(Features), row-major
	Y        []int     // class index per row
}

// Rows is the number of rows.
func (d *Dataset) Rows() int { return len(d.Y) }

// ReadCSV reads a dataset with a header row. label names the label column
// (empty: the last column); every other column must be numeric.
func ReadCSV(r io.Reader, label string, lim Limits) (*Dataset, error) {
	lim = lim.withDefaults()
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrInvalidCSV, err)
	}
	header = append([]string(nil), header...)
	li := len(header) - 1
	if label != "" {
		li = -1
		for i, h := range header {
			if strings.TrimSpace(h) == label {
				li = i
			}
		}
		if li < 0 {
			return nil, fmt.Errorf("%w: %q is not among the columns %s", ErrNoLabel, label, strings.Join(header, ", "))
		}
	}
	if len(header) < 2 {
		return nil, fmt.Errorf("%w: need a feature column and a label column", ErrInvalidCSV)
	}
	if len(header)-1 > lim.MaxFeatures {
		return nil, fmt.Errorf("%w: %d features, limit %d", ErrTooLarge, len(header)-1, lim.MaxFeatures)
	}
	d := &Dataset{Label: strings.TrimSpace(header[li])}
	for i, h := range header {
		if i != li {
			d.Features = append(d.Features, strings.TrimSpace(h))
		}
	}
	var labels []string
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidCSV, err)
		}
		if len(labels) >= lim.MaxRows {
			return nil, fmt.Errorf("%w: more than %d rows", ErrTooLarge, lim.MaxRows)
		}
		for i, v := range rec {
			if i == li {
				labels = append(labels, strings.TrimSpace(v))
				continue
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("%w: line %d, column %q: %q", ErrNotNumeric, line, header[i], v)
			}
			d.X = append(d.X, f)
		}
	}
	set := map[string]int{}
	for _, l := range labels {
		set[l] = 0
	}
	for l := range set {
		d.Classes = append(d.Classes, l)
	}
	sort.Strings(d.Classes)
	switch {
	case len(labels) < 4:
		return nil, fmt.Errorf("%w: %d data rows, need at least 4", ErrTooFewRows, len(labels))
	case len(d.Classes) < 2:
		return nil, fmt.Errorf("%w: every row's %s is %q", ErrOneClass, d.Label, d.Classes[0])
	case len(d.Classes) > lim.MaxClasses:
		return nil, fmt.Errorf("%w: %d classes in %s, limit %d", ErrTooLarge, len(d.Classes), d.Label, lim.MaxClasses)
	}
	for i, c := range d.Classes {
		set[c] = i
	}
	d.Y = make([]int, len(labels))
	for i, l := range labels {
		d.Y[i] = set[l]
	}
	return d, nil
}

// ReadFeatures reads rows to predict: a header naming at least the model's
// features (other columns, such as the label, are ignored).
func ReadFeatures(r io.Reader, features []string, maxRows int) ([]float64, int, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, 0, fmt.Errorf("%w: header: %v", ErrInvalidCSV, err)
	}
	idx := make([]int, len(features))
	for i, f := range features {
		idx[i] = -1
		for j, h := range header {
			if strings.TrimSpace(h) == f {
				idx[i] = j
			}
		}
		if idx[i] < 0 {
			return nil, 0, fmt.Errorf("%w: column %q is missing", ErrColumns, f)
		}
	}
	var x []float64
	n := 0
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrInvalidCSV, err)
		}
		if maxRows > 0 && n >= maxRows {
			return nil, 0, fmt.Errorf("%w: more than %d rows", ErrTooLarge, maxRows)
		}
		for i, j := range idx {
			f, err := strconv.ParseFloat(strings.TrimSpace(rec[j]), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, 0, fmt.Errorf("%w: line %d, column %q: %q", ErrNotNumeric, line, features[i], rec[j])
			}
			x = append(x, f)
		}
		n++
	}
	return x, n, nil
}
