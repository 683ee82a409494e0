// Package dataproc is the built-in "Data Analysis Pipeline" processor: it
// reads a CSV or JSON table, keeps the rows that pass the job's filters,
// and reports per-column statistics and group-by aggregates as JSON, CSV
// or Markdown. It is deterministic — sums run in row order, groups and
// ties are sorted, floats print in Go's shortest round-trip form — so a
// job can be re-run and its report compared byte for byte. Imported by
// the miner's data-processing executor and the CLI.
package dataproc

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Errors of the processor; test them with errors.Is.
var (
	ErrInvalidCSV    = errors.New("dataproc: invalid CSV")
	ErrInvalidJSON   = errors.New("dataproc: invalid JSON (want an array of flat objects)")
	ErrUnknownColumn = errors.New("dataproc: unknown column")
	ErrInvalidSpec   = errors.New("dataproc: invalid parameters")
	ErrTooLarge      = errors.New("dataproc: input over the limit")
)

// Limits bound the input and the report.
type Limits struct {
	MaxRows    int // 1,000,000
	MaxColumns int // 512
	MaxGroups  int // 10,000
}

func (l Limits) withDefaults() Limits {
	if l.MaxRows == 0 {
		l.MaxRows = 1_000_000
	}
	if l.MaxColumns == 0 {
		l.MaxColumns = 512
	}
	if l.MaxGroups == 0 {
		l.MaxGroups = 10_000
	}
	return l
}

// Filter keeps the rows whose Column compares to Value by Op: ==, !=, >,
// >=, <, <= (numerically when both sides are numbers, else as text) or
// contains.
type Filter struct {
	Column string `json:"column"`
	Op     string `json:"op"`
	Value  string `json:"value"`
}

// Aggregate is Fn (count, sum, mean, min or max) of Column per group.
type Aggregate struct {
	Fn     string `json:"fn"`
	Column string `json:"column,omitempty"` // not needed for count
}

// Spec is a data-processing job's parameters.
type Spec struct {
	Format     string      `json:"format,omitempty"` // csv or json; empty: by the content
	Filters    []Filter    `json:"filters,omitempty"`
	Columns    []string    `json:"columns,omitempty"` // columns to describe; empty: all
	GroupBy    []string    `json:"group_by,omitempty"`
	Aggregates []Aggregate `json:"aggregates,omitempty"`
	Output     string      `json:"output,omitempty"` // json (default), csv or markdown
}

// Table is the input: a header and rows of text cells.
type Table struct {
	Columns []string
	Rows    [][]string
}

// Read parses data as CSV (a header row) or JSON (an array of objects;
// columns are the keys, sorted).
func Read(data []byte, format string, lim Limits) (*Table, error) {
	lim = lim.withDefaults()
	if format == "" {
		format = "csv"
		if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '[' {
			format = "json"
		}
	}
	switch format {
	case "csv":
		return readCSV(data, lim)
	case "json":
		return readJSON(data, lim)
	}
	return nil, fmt.Errorf("%w: format %q (csv or json)", ErrInvalidSpec, format)
}

func readCSV(data []byte, lim Limits) (*Table, error) {
	r := csv.NewReader(bytes.NewReader(data))
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrInvalidCSV, err)
	}
	if len(header) > lim.MaxColumns {
		return nil, fmt.Errorf("%w: %d columns, limit %d", ErrTooLarge, len(header), lim.MaxColumns)
	}
	t := &Table{}
	seen := map[string]bool{}
	for _, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if seen[h] {
			return nil, fmt.Errorf("%w: column %q appears twice", ErrInvalidCSV, h)
		}
		seen[h] = true
		t.Columns = append(t.Columns, h)
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return t, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidCSV, err)
		}
		if len(t.Rows) >= lim.MaxRows {
			return nil, fmt.Errorf("%w: more than %d rows", ErrTooLarge, lim.MaxRows)
		}
		t.Rows = append(t.Rows, rec)
	}
}

func readJSON(data []byte, lim Limits) (*Table, error) {
	var objs []map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&objs); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	if len(objs) > lim.MaxRows {
		return nil, fmt.Errorf("%w: more than %d rows", ErrTooLarge, lim.MaxRows)
	}
	keys := map[string]bool{}
	for _, o := range objs {
		for k := range o {
			keys[k] = true
		}
	}
	if len(keys) > lim.MaxColumns {
		return nil, fmt.Errorf("%w: %d columns, limit %d", ErrTooLarge, len(keys), lim.MaxColumns)
	}
	t := &Table{}
	for k := range keys {
		t.Columns = append(t.Columns, k)
	}
	sort.Strings(t.Columns)
	for i, o := range objs {
		row := make([]string, len(t.Columns))
		for j, c := range t.Columns {
			switch v := o[c].(type) {
			case nil:
			case string:
				row[j] = v
			case json.Number:
				row[j] = v.String()
			case bool:
				row[j] = strconv.FormatBool(v)
			default:
				return nil, fmt.Errorf("%w: row %d, %q is nested", ErrInvalidJSON, i+1, c)
			}
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// ColumnStats describes one column of the kept rows.
type ColumnStats struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"` // number or text
	Count    int      `json:"count"`
	Missing  int      `json:"missing"`
	Distinct int      `json:"distinct"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	Mean     *float64 `json:"mean,omitempty"`
	Std      *float64 `json:"std,omitempty"` // population standard deviation
	Sum      *float64 `json:"sum,omitempty"`
	Top      string   `json:"top,omitempty"` // most frequent text value (ties: the smallest)
	TopCount int      `json:"top_count,omitempty"`
}

// Group is one group-by key and its aggregates, in the Spec's order.
type Group struct {
	Key    []string   `json:"key"`
	Count  int        `json:"count"`
	Values []*float64 `json:"values"` // null where a group has no number to aggregate
}

// Report is the processor's result.
type Report struct {
	Rows       int           `json:"rows"`
	Kept       int           `json:"rows_kept"`
	Filters    []Filter      `json:"filters,omitempty"`
	Columns    []ColumnStats `json:"columns"`
	GroupBy    []string      `json:"group_by,omitempty"`
	Aggregates []string      `json:"aggregates,omitempty"` // "sum(sales)", ...
	Groups     []Group       `json:"groups,omitempty"`
	// Cells is rows × columns read: the work a data-processing job is
	// paid for (docs/JOBS.md).
	Cells int64 `json:"cells"`
}

// Validate checks s against the table's columns.
func (s *Spec) Validate(t *Table) error {
	col := map[string]bool{}
	for _, c := range t.Columns {
		col[c] = true
	}
	known := func(c, what string) error {
		if !col[c] {
			return fmt.Errorf("%w: %s %q; columns: %s", ErrUnknownColumn, what, c, strings.Join(t.Columns, ", "))
		}
		return nil
	}
	for _, f := range s.Filters {
		if err := known(f.Column, "filter column"); err != nil {
			return err
		}
		switch f.Op {
		case "==", "!=", ">", ">=", "<", "<=", "contains":
		default:
			return fmt.Errorf("%w: filter op %q (==, !=, >, >=, <, <=, contains)", ErrInvalidSpec, f.Op)
		}
	}
	for _, c := range s.Columns {
		if err := known(c, "column"); err != nil {
			return err
		}
	}
	for _, c := range s.GroupBy {
		if err := known(c, "group-by column"); err != nil {
			return err
		}
	}
	for _, a := range s.Aggregates {
		switch a.Fn {
		case "count":
		case "sum", "mean", "min", "max":
			if err := known(a.Column, a.Fn+" column"); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: aggregate %q (count, sum, mean, min, max)", ErrInvalidSpec, a.Fn)
		}
	}
	if len(s.Aggregates) > 0 && len(s.GroupBy) == 0 {
		return fmt.Errorf("%w: aggregates need group_by", ErrInvalidSpec)
	}
	switch s.Output {
	case "", "json", "csv", "markdown", "md":
	default:
		return fmt.Errorf("%w: output %q (json, csv, markdown)", ErrInvalidSpec, s.Output)
	}
	return nil
}

// Process filters t, describes its columns and aggregates its groups.
func Process(t *Table, s Spec, lim Limits) (*Report, error) {
	lim = lim.withDefaults()
	if err := s.Validate(t); err != nil {
		return nil, err
	}
	idx := map[string]int{}
	for i, c := range t.Columns {
		idx[c] = i
	}
	rep := &Report{Rows: len(t.Rows), Filters: s.Filters, GroupBy: s.GroupBy, Cells: int64(len(t.Rows)) * int64(len(t.Columns))}
	var kept [][]string
	for _, row := range t.Rows {
		if len(row) != len(t.Columns) {
			continue // csv.Reader refuses ragged rows; JSON rows are built whole
		}
		ok := true
		for _, f := range s.Filters {
			if !match(row[idx[f.Column]], f) {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, row)
		}
	}
	rep.Kept = len(kept)
	cols := s.Columns
	if len(cols) == 0 {
		cols = t.Columns
	}
	for _, c := range cols {
		rep.Columns = append(rep.Columns, describe(c, kept, idx[c]))
	}
	if len(s.GroupBy) > 0 {
		for _, a := range s.Aggregates {
			col := a.Column
			if a.Fn == "count" {
				col = "*" // count counts rows, whatever the column
			}
			rep.Aggregates = append(rep.Aggregates, a.Fn+"("+col+")")
		}
		groups, err := group(kept, s, idx, lim)
		if err != nil {
			return nil, err
		}
		rep.Groups = groups
	}
	return rep, nil
}

func num(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

func match(v string, f Filter) bool {
	if f.Op == "contains" {
		return strings.Contains(v, f.Value)
	}
	a, aok := num(v)
	b, bok := num(f.Value)
	c := 0
	if aok && bok {
		c = cmpFloat(a, b)
	} else {
		c = strings.Compare(strings.TrimSpace(v), f.Value)
	}
	switch f.Op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	case "<":
		return c < 0
	}
	return c <= 0 // "<="
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func describe(name string, rows [][]string, i int) ColumnStats {
	cs := ColumnStats{Name: name, Type: "number"}
	freq := map[string]int{}
	var vals []float64
	for _, r := range rows {
		v := strings.TrimSpace(r[i])
		if v == "" {
			cs.Missing++
			continue
		}
		cs.Count++
		freq[v]++
		if f, ok := num(v); ok {
			vals = append(vals, f)
		} else {
			cs.Type = "text"
		}
	}
	cs.Distinct = len(freq)
	if cs.Count == 0 {
		cs.Type = "text"
		return cs
	}
	if cs.Type == "number" {
		lo, hi, sum := vals[0], vals[0], 0.0
		for _, v := range vals { // row order: the same sum on every run
			lo, hi, sum = min(lo, v), max(hi, v), sum+v
		}
		mean := sum / float64(len(vals))
		var ss float64
		for _, v := range vals {
			d := v - mean
			ss += float64(d * d)
		}
		std := math.Sqrt(ss / float64(len(vals)))
		cs.Min, cs.Max, cs.Sum, cs.Mean, cs.Std = &lo, &hi, &sum, &mean, &std
		return cs
	}
	for v, n := range freq {
		if n > cs.TopCount || n == cs.TopCount && v < cs.Top {
			cs.Top, cs.TopCount = v, n
		}
	}
	return cs
}

type acc struct {
	count int
	n     []int
	sum   []float64
	lo    []float64
	hi    []float64
}

func group(rows [][]string, s Spec, idx map[string]int, lim Limits) ([]Group, error) {
	groups := map[string]*acc{}
	keys := map[string][]string{}
	na := len(s.Aggregates)
	for _, r := range rows {
		key := make([]string, len(s.GroupBy))
		for i, c := range s.GroupBy {
			key[i] = strings.TrimSpace(r[idx[c]])
		}
		k := strings.Join(key, "\x00")
		g := groups[k]
		if g == nil {
			if len(groups) >= lim.MaxGroups {
				return nil, fmt.Errorf("%w: more than %d groups", ErrTooLarge, lim.MaxGroups)
			}
			g = &acc{n: make([]int, na), sum: make([]float64, na), lo: make([]float64, na), hi: make([]float64, na)}
			groups[k], keys[k] = g, key
		}
		g.count++
		for j, a := range s.Aggregates {
			if a.Fn == "count" {
				continue
			}
			v, ok := num(r[idx[a.Column]])
			if !ok {
				continue // text and missing cells do not count
			}
			if g.n[j] == 0 {
				g.lo[j], g.hi[j] = v, v
			}
			g.n[j]++
			g.sum[j] += v
			g.lo[j], g.hi[j] = min(g.lo[j], v), max(g.hi[j], v)
		}
	}
	order := make([]string, 0, len(groups))
	for k := range groups {
		order = append(order, k)
	}
	sort.Strings(order)
	out := make([]Group, 0, len(order))
	for _, k := range order {
		g := groups[k]
		grp := Group{Key: keys[k], Count: g.count, Values: make([]*float64, na)}
		for j, a := range s.Aggregates {
			var v float64
			switch a.Fn {
			case "count":
				v = float64(g.count)
			case "sum":
				v = g.sum[j]
			case "mean":
				v = g.sum[j] / float64(max(g.n[j], 1))
			case "min":
				v = g.lo[j]
			case "max":
				v = g.hi[j]
			}
			if a.Fn == "count" || g.n[j] > 0 {
				grp.Values[j] = &v
			}
		}
		out = append(out, grp)
	}
	return out, nil
}
