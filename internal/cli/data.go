package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/aitbc/aitbc/internal/dataproc"
)

// newDataCmd is `aitbc data`: the data-processing pipeline a miner runs
// for a data-processing job, on this machine.
func newDataCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Analyse CSV and JSON tables with the built-in data-processing pipeline",
	}
	cmd.AddCommand(newDataProcessCmd(g))
	return cmd
}

func newDataProcessCmd(g *Globals) *cobra.Command {
	var input, format, report, out string
	var filters, groupBy, columns, aggs []string
	cmd := &cobra.Command{
		Use:   "process",
		Short: "Per-column statistics, filters and group-by aggregates of a CSV or JSON table",
		Long: `Reads --input (CSV with a header row, or a JSON array of flat objects), keeps
the rows that pass every --filter, describes each column (count, missing,
distinct; min, max, mean, standard deviation and sum of numbers; the most
frequent text value) and, with --group-by, aggregates each group (--agg).
The report (--report json, csv or markdown) is deterministic: the same input
and parameters give the same bytes, so a data-processing job can be re-run
and compared. With --output json the report is printed as JSON whatever
--report says.`,
		Example: `  aitbc data process --input processed_data.csv
  aitbc data process --input sales.csv --filter 'units>=5' --group-by region --agg sum:units --agg count --report markdown
  aitbc data process --input events.json --columns latency_ms --report csv --out report.csv
  aitbc data process --input sales.csv --group-by region --agg mean:price --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if input == "" {
				return usagef("--input is required (a CSV or JSON file)")
			}
			spec := dataproc.Spec{Format: format, GroupBy: groupBy, Columns: columns, Output: report}
			for _, f := range filters {
				flt, err := dataproc.ParseFilter(f)
				if err != nil {
					return usagef("--filter: %v", err)
				}
				spec.Filters = append(spec.Filters, flt)
			}
			for _, a := range aggs {
				agg, err := dataproc.ParseAggregate(a)
				if err != nil {
					return usagef("--agg: %v", err)
				}
				spec.Aggregates = append(spec.Aggregates, agg)
			}
			f, err := openLimited(input)
			if err != nil {
				return err
			}
			data, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				return err
			}
			tab, err := dataproc.Read(data, format, dataproc.Limits{})
			if err != nil {
				return usagef("--input %s: %v", input, err)
			}
			rep, err := dataproc.Process(tab, spec, dataproc.Limits{})
			if err != nil {
				return usagef("%v", err)
			}
			if g.JSON() {
				return g.Print(rep, nil)
			}
			b, err := rep.Render(report)
			if err != nil {
				return usagef("%v", err)
			}
			if out != "" {
				if err := os.WriteFile(out, b, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(g.Stderr(), "report written to %s (%d of %d rows kept)\n", out, rep.Kept, rep.Rows)
				return nil
			}
			_, err = g.Stdout().Write(b)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&input, "input", "", "CSV or JSON file (required)")
	f.StringVar(&format, "format", "", "csv or json (default: by the content)")
	f.StringArrayVar(&filters, "filter", nil, "keep rows where COLUMN OP VALUE (OP: == != > >= < <= contains); repeatable, all must hold")
	f.StringSliceVar(&groupBy, "group-by", nil, "columns to group by (comma-separated)")
	f.StringArrayVar(&aggs, "agg", nil, "aggregate per group: FN:COLUMN with FN sum, mean, min or max, or count; repeatable")
	f.StringSliceVar(&columns, "columns", nil, "columns to describe (default: all)")
	f.StringVar(&report, "report", "json", "report format: json, csv or markdown")
	f.StringVar(&out, "out", "", "write the report to this file instead of standard output")
	return cmd
}
