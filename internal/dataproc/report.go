package dataproc

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Render writes the report in format: json (default), csv or markdown.
// The same report renders to the same bytes every time.
func (r *Report) Render(format string) ([]byte, error) {
	switch format {
	case "", "json":
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return nil, err
		}
		return append(b, '\n'), nil
	case "csv":
		return r.csv()
	case "markdown", "md":
		return r.markdown(), nil
	}
	return nil, fmt.Errorf("%w: output %q (json, csv, markdown)", ErrInvalidSpec, format)
}

func f64(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

var statsHeader = []string{"column", "type", "count", "missing", "distinct", "min", "max", "mean", "std", "sum", "top", "top_count"}

func (c ColumnStats) cells() []string {
	top := ""
	if c.TopCount > 0 {
		top = strconv.Itoa(c.TopCount)
	}
	return []string{c.Name, c.Type, strconv.Itoa(c.Count), strconv.Itoa(c.Missing), strconv.Itoa(c.Distinct),
		f64(c.Min), f64(c.Max), f64(c.Mean), f64(c.Std), f64(c.Sum), c.Top, top}
}

func (r *Report) groupHeader() []string {
	return append(append(append([]string(nil), r.GroupBy...), "count"), r.Aggregates...)
}

func (g Group) cells() []string {
	row := append(append([]string(nil), g.Key...), strconv.Itoa(g.Count))
	for _, v := range g.Values {
		row = append(row, f64(v))
	}
	return row
}

// csv is the statistics table, then (after an empty line) the groups.
func (r *Report) csv() ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(statsHeader)
	for _, c := range r.Columns {
		w.Write(c.cells())
	}
	w.Flush()
	if len(r.GroupBy) > 0 {
		buf.WriteString("\n")
		w.Write(r.groupHeader())
		for _, g := range r.Groups {
			w.Write(g.cells())
		}
		w.Flush()
	}
	return buf.Bytes(), w.Error()
}

func mdRow(sb *strings.Builder, cells []string) {
	sb.WriteString("|")
	for _, c := range cells {
		sb.WriteString(" " + strings.ReplaceAll(strings.ReplaceAll(c, "|", `\|`), "\n", " ") + " |")
	}
	sb.WriteString("\n")
}

func (r *Report) markdown() []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# Data analysis report\n\n%d rows read, %d kept", r.Rows, r.Kept)
	if len(r.Filters) > 0 {
		var fs []string
		for _, f := range r.Filters {
			fs = append(fs, fmt.Sprintf("`%s %s %s`", f.Column, f.Op, f.Value))
		}
		fmt.Fprintf(&sb, " by %s", strings.Join(fs, " and "))
	}
	sb.WriteString(".\n\n## Columns\n\n")
	mdRow(&sb, statsHeader)
	mdRow(&sb, strings.Split(strings.Repeat("---,", len(statsHeader)-1)+"---", ","))
	for _, c := range r.Columns {
		mdRow(&sb, c.cells())
	}
	if len(r.GroupBy) > 0 {
		fmt.Fprintf(&sb, "\n## Groups by %s\n\n", strings.Join(r.GroupBy, ", "))
		h := r.groupHeader()
		mdRow(&sb, h)
		mdRow(&sb, strings.Split(strings.Repeat("---,", len(h)-1)+"---", ","))
		for _, g := range r.Groups {
			mdRow(&sb, g.cells())
		}
	}
	return []byte(sb.String())
}

// ParseFilter reads a filter written as COLUMN OP VALUE ("sales>=10",
// "region==north", "name contains son").
func ParseFilter(s string) (Filter, error) {
	if c, v, ok := strings.Cut(s, " contains "); ok {
		return Filter{Column: strings.TrimSpace(c), Op: "contains", Value: strings.TrimSpace(v)}, nil
	}
	for _, op := range []string{"==", "!=", ">=", "<=", ">", "<"} { // two-character operators first
		if c, v, ok := strings.Cut(s, op); ok && strings.TrimSpace(c) != "" {
			return Filter{Column: strings.TrimSpace(c), Op: op, Value: strings.TrimSpace(v)}, nil
		}
	}
	return Filter{}, fmt.Errorf("%w: filter %q: want COLUMN OP VALUE with OP one of == != > >= < <= contains", ErrInvalidSpec, s)
}

// ParseAggregate reads FN:COLUMN ("sum:sales") or "count".
func ParseAggregate(s string) (Aggregate, error) {
	fn, col, _ := strings.Cut(s, ":")
	a := Aggregate{Fn: strings.TrimSpace(fn), Column: strings.TrimSpace(col)}
	if a.Fn != "count" && a.Column == "" {
		return Aggregate{}, fmt.Errorf("%w: aggregate %q: want FN:COLUMN (sum, mean, min, max) or count", ErrInvalidSpec, s)
	}
	return a, nil
}
