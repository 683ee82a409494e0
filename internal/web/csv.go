package web

import (
	"encoding/csv"
	"net/http"
	"strings"
)

// wantCSV reports whether a list was asked for as CSV (?format=csv): every
// list page offers its rows that way.
func wantCSV(r *http.Request) bool { return r.URL.Query().Get("format") == "csv" }

// writeCSV writes rows as a CSV download. A cell that a spreadsheet would
// run as a formula (= + - @ first) is prefixed with a quote, so that a
// hostile service name cannot execute in the reader's spreadsheet.
func writeCSV(w http.ResponseWriter, filename string, header []string, rows [][]string) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+strings.Map(safeFileRune, filename)+`"`)
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return nil // the viewer went away
	}
	for _, r := range rows {
		out := make([]string, len(r))
		for i, c := range r {
			if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				c = "'" + c
			}
			out[i] = c
		}
		if err := cw.Write(out); err != nil {
			return nil
		}
	}
	cw.Flush()
	return nil
}

func safeFileRune(r rune) rune {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
		return r
	}
	return '_'
}
