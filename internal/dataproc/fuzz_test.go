package dataproc_test

import (
	"testing"

	"github.com/aitbc/aitbc/internal/dataproc"
)

// FuzzReadAndProcess: any input either reads or is refused with an error,
// never a panic; a table that reads processes and renders in every format,
// twice to the same bytes.
func FuzzReadAndProcess(f *testing.F) {
	f.Add([]byte(sales), "units>=5", "region")
	f.Add([]byte(`[{"a":1,"b":"x"},{"a":2.5}]`), "a<2", "b")
	f.Add([]byte("a,a\n"), "a==", "a")
	f.Add([]byte("\ufeffx\n\"unterminated"), "x contains y", "x")
	f.Fuzz(func(t *testing.T, data []byte, filter, group string) {
		tab, err := dataproc.Read(data, "", dataproc.Limits{MaxRows: 1000, MaxColumns: 50, MaxGroups: 100})
		if err != nil {
			return
		}
		spec := dataproc.Spec{}
		if flt, err := dataproc.ParseFilter(filter); err == nil {
			spec.Filters = []dataproc.Filter{flt}
		}
		if group != "" {
			spec.GroupBy = []string{group}
			spec.Aggregates = []dataproc.Aggregate{{Fn: "count"}}
		}
		rep, err := dataproc.Process(tab, spec, dataproc.Limits{MaxGroups: 100})
		if err != nil {
			return
		}
		for _, format := range []string{"json", "csv", "markdown"} {
			a, err := rep.Render(format)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			b, _ := rep.Render(format)
			if string(a) != string(b) {
				t.Fatalf("%s rendered differently twice", format)
			}
		}
	})
}
