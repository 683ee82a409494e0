package dataproc_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aitbc/aitbc/internal/dataproc"
)

const sales = `region,product,units,price
north,apple,10,1.5
south,apple,4,1.5
north,pear,7,2
south,pear,,2
east,apple,3,1.25
north,apple,5,1.5
`

func run(t *testing.T, data string, s dataproc.Spec) *dataproc.Report {
	t.Helper()
	tab, err := dataproc.Read([]byte(data), s.Format, dataproc.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := dataproc.Process(tab, s, dataproc.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestColumnStatisticsFiltersAndGroups(t *testing.T) {
	r := run(t, sales, dataproc.Spec{
		Filters:    []dataproc.Filter{{Column: "price", Op: ">=", Value: "1.5"}},
		GroupBy:    []string{"region"},
		Aggregates: []dataproc.Aggregate{{Fn: "sum", Column: "units"}, {Fn: "mean", Column: "units"}, {Fn: "count"}},
	})
	if r.Rows != 6 || r.Kept != 5 || r.Cells != 24 {
		t.Fatalf("rows %d kept %d cells %d", r.Rows, r.Kept, r.Cells)
	}
	units := r.Columns[2]
	if units.Name != "units" || units.Type != "number" || units.Count != 4 || units.Missing != 1 || *units.Sum != 26 || *units.Min != 4 || *units.Max != 10 || *units.Mean != 6.5 {
		t.Fatalf("units: %+v", units)
	}
	product := r.Columns[1]
	if product.Type != "text" || product.Top != "apple" || product.TopCount != 3 || product.Distinct != 2 {
		t.Fatalf("product: %+v", product)
	}
	// Groups sorted by key; a group whose units are all missing has a null mean.
	if len(r.Groups) != 2 || r.Groups[0].Key[0] != "north" || r.Groups[1].Key[0] != "south" {
		t.Fatalf("groups %+v", r.Groups)
	}
	n, s := r.Groups[0], r.Groups[1]
	if *n.Values[0] != 22 || *n.Values[2] != 3 || n.Count != 3 || *s.Values[0] != 4 || *s.Values[1] != 4 || *s.Values[2] != 2 {
		t.Fatalf("values north %v south %v", n.Values, s.Values)
	}
}

func TestReportsRenderTheSameBytesEveryRun(t *testing.T) {
	spec := dataproc.Spec{GroupBy: []string{"product"}, Aggregates: []dataproc.Aggregate{{Fn: "max", Column: "price"}}}
	for _, format := range []string{"json", "csv", "markdown"} {
		a, err := run(t, sales, spec).Render(format)
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			b, _ := run(t, sales, spec).Render(format)
			if string(a) != string(b) {
				t.Fatalf("%s report changed between runs", format)
			}
		}
	}
	md, _ := run(t, sales, spec).Render("markdown")
	if !strings.Contains(string(md), "| apple | 4 | 1.5 |") || !strings.Contains(string(md), "## Groups by product") {
		t.Fatalf("markdown:\n%s", md)
	}
	c, _ := run(t, sales, spec).Render("csv")
	if !strings.Contains(string(c), "product,count,max(price)\napple,4,1.5\npear,2,2\n") {
		t.Fatalf("csv:\n%s", c)
	}
}

func TestJSONInputMatchesCSV(t *testing.T) {
	js := `[{"region":"north","units":10},{"region":"south","units":4},{"region":"north","units":7.5,"note":null}]`
	r := run(t, js, dataproc.Spec{GroupBy: []string{"region"}, Aggregates: []dataproc.Aggregate{{Fn: "sum", Column: "units"}}})
	if len(r.Columns) != 3 || r.Columns[0].Name != "note" || r.Columns[0].Missing != 3 {
		t.Fatalf("columns %+v", r.Columns)
	}
	if *r.Groups[0].Values[0] != 17.5 {
		t.Fatalf("north sum %v", *r.Groups[0].Values[0])
	}
}

func TestBadInputAndParameters(t *testing.T) {
	cases := []struct {
		name string
		data string
		spec dataproc.Spec
		want error
	}{
		{"ragged csv", "a,b\n1,2\n3\n", dataproc.Spec{}, dataproc.ErrInvalidCSV},
		{"duplicate column", "a,a\n1,2\n", dataproc.Spec{}, dataproc.ErrInvalidCSV},
		{"json not an array of objects", `[1,2]`, dataproc.Spec{}, dataproc.ErrInvalidJSON},
		{"nested json", `[{"a":{"b":1}}]`, dataproc.Spec{}, dataproc.ErrInvalidJSON},
		{"unknown filter column", sales, dataproc.Spec{Filters: []dataproc.Filter{{Column: "colour", Op: "==", Value: "red"}}}, dataproc.ErrUnknownColumn},
		{"unknown op", sales, dataproc.Spec{Filters: []dataproc.Filter{{Column: "units", Op: "~", Value: "1"}}}, dataproc.ErrInvalidSpec},
		{"aggregate without group", sales, dataproc.Spec{Aggregates: []dataproc.Aggregate{{Fn: "count"}}}, dataproc.ErrInvalidSpec},
		{"unknown aggregate", sales, dataproc.Spec{GroupBy: []string{"region"}, Aggregates: []dataproc.Aggregate{{Fn: "median", Column: "units"}}}, dataproc.ErrInvalidSpec},
		{"unknown output", sales, dataproc.Spec{Output: "xml"}, dataproc.ErrInvalidSpec},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab, err := dataproc.Read([]byte(c.data), "", dataproc.Limits{})
			if err == nil {
				_, err = dataproc.Process(tab, c.spec, dataproc.Limits{})
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if _, err := dataproc.Read([]byte(sales), "", dataproc.Limits{MaxRows: 5}); !errors.Is(err, dataproc.ErrTooLarge) {
		t.Fatalf("row limit: %v", err)
	}
	tab, _ := dataproc.Read([]byte("g,v\n"+strings.Repeat("a,1\nb,1\nc,1\n", 2)), "", dataproc.Limits{})
	if _, err := dataproc.Process(tab, dataproc.Spec{GroupBy: []string{"g"}}, dataproc.Limits{MaxGroups: 2}); !errors.Is(err, dataproc.ErrTooLarge) {
		t.Fatalf("group limit: %v", err)
	}
}

func TestParseFilterAndAggregate(t *testing.T) {
	for in, want := range map[string]dataproc.Filter{
		"units>=10":            {Column: "units", Op: ">=", Value: "10"},
		"region == north":      {Column: "region", Op: "==", Value: "north"},
		"product contains pea": {Column: "product", Op: "contains", Value: "pea"},
		"price<2":              {Column: "price", Op: "<", Value: "2"},
		"region!=south":        {Column: "region", Op: "!=", Value: "south"},
	} {
		got, err := dataproc.ParseFilter(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
	if _, err := dataproc.ParseFilter("units"); !errors.Is(err, dataproc.ErrInvalidSpec) {
		t.Errorf("no op: %v", err)
	}
	if a, err := dataproc.ParseAggregate("sum:units"); err != nil || a.Fn != "sum" || a.Column != "units" {
		t.Errorf("sum:units: %+v %v", a, err)
	}
	if _, err := dataproc.ParseAggregate("sum"); !errors.Is(err, dataproc.ErrInvalidSpec) {
		t.Errorf("sum without a column: %v", err)
	}
}
