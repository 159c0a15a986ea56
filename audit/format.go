package audit

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteWho prints Who rows as an aligned table for `cafilprox audit who`.
func WriteWho(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ECOSYSTEM\tPACKAGE\tCLIENT\tUSER\tFIRST\tLAST\tCOUNT\tVERSIONS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Ecosystem, r.Package, r.ClientIP, dash(r.User),
			r.First.Format(time.RFC3339), r.Last.Format(time.RFC3339), r.Count, strings.Join(r.Versions, ","))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("audit: write table: %w", err)
	}
	return nil
}

// WriteBlocks prints Blocks events as an aligned table for
// `cafilprox audit blocks`.
func WriteBlocks(w io.Writer, evs []Event) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tCLIENT\tUSER\tECOSYSTEM\tPACKAGE\tDECISION\tRULE\tREASON")
	for _, e := range evs {
		pkg := e.Package
		if e.Version != "" {
			pkg += "@" + e.Version
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339), e.ClientIP, dash(e.User),
			e.Ecosystem, pkg, e.Decision, dash(e.Rule), oneLine(e.Reason))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("audit: write table: %w", err)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a reason from breaking the table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
