package audit

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Row is one client that fetched a package, as answered by Who.
type Row struct {
	Ecosystem string `json:"ecosystem"`
	Package   string `json:"package"`
	ClientIP  string `json:"client_ip"`
	User      string `json:"user,omitempty"`
	// First and Last are the first and last time this client was served the
	// package's artifacts.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// Count is the number of artifacts served to this client.
	Count int64 `json:"count"`
	// Versions lists the distinct versions served, sorted.
	Versions []string `json:"versions"`
}

// Who lists the clients that were served artifacts of a package, one row
// per ecosystem, package, client address and user, most recent first.
// Served means an artifact request that was allowed or shadow-denied
// (shadow mode serves what it would deny); refusals are in Blocks.
// An empty eco matches every ecosystem; an empty version matches every
// version. name must be the name as the classifier normalised it.
func (l *Log) Who(ctx context.Context, eco, name, version string) ([]Row, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	q := `SELECT ecosystem, package, client_ip, user, MIN(ts), MAX(ts), COUNT(*), GROUP_CONCAT(DISTINCT version)
		FROM events
		WHERE package = ? AND kind = 'artifact' AND decision IN ('allow', 'shadow-deny')`
	args := []any{name}
	if eco != "" {
		q += ` AND ecosystem = ?`
		args = append(args, eco)
	}
	if version != "" {
		q += ` AND version = ?`
		args = append(args, version)
	}
	q += ` GROUP BY ecosystem, package, client_ip, user ORDER BY MAX(ts) DESC`
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: who %s: %w", name, err)
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		var r Row
		var first, last int64
		var versions sql.NullString
		if err := rows.Scan(&r.Ecosystem, &r.Package, &r.ClientIP, &r.User, &first, &last, &r.Count, &versions); err != nil {
			return nil, fmt.Errorf("audit: who %s: %w", name, err)
		}
		r.First, r.Last = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		r.Versions = []string{}
		if versions.String != "" {
			r.Versions = strings.Split(versions.String, ",")
			sort.Strings(r.Versions)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: who %s: %w", name, err)
	}
	return out, nil
}

const eventColumns = `ts, request_id, client_ip, user, ecosystem, package, version, kind, decision, rule, reason, cache, bytes, status`

func scanEvent(rows *sql.Rows) (Event, error) {
	var e Event
	var ts int64
	err := rows.Scan(&ts, &e.RequestID, &e.ClientIP, &e.User, &e.Ecosystem, &e.Package, &e.Version,
		&e.Kind, &e.Decision, &e.Rule, &e.Reason, &e.Cache, &e.Bytes, &e.Status)
	e.Time = time.Unix(0, ts).UTC()
	return e, err
}

// MaxBlocks caps the rows Blocks returns, newest first, so that an admin
// request over a long window cannot exhaust memory; use Export for all rows.
const MaxBlocks = 10000

// Blocks lists refusals (deny and shadow-deny) since a time, newest first,
// at most MaxBlocks of them.
func (l *Log) Blocks(ctx context.Context, since time.Time) ([]Event, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	rows, err := l.db.QueryContext(ctx, `SELECT `+eventColumns+` FROM events
		WHERE decision IN ('deny', 'shadow-deny') AND ts >= ? ORDER BY ts DESC LIMIT ?`,
		since.UnixNano(), MaxBlocks)
	if err != nil {
		return nil, fmt.Errorf("audit: blocks: %w", err)
	}
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("audit: blocks: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: blocks: %w", err)
	}
	return out, nil
}

// Export formats.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// csvHeader is the CSV column order; it matches the Event JSON names.
var csvHeader = []string{"time", "request_id", "client_ip", "user", "ecosystem", "package", "version",
	"kind", "decision", "rule", "reason", "cache", "bytes", "status"}

// Export streams every event since a time, oldest first, to w as JSON
// lines or CSV (with a header row). Rows are streamed, never all held in
// memory.
func (l *Log) Export(ctx context.Context, w io.Writer, format string, since time.Time) error {
	if format != FormatJSONL && format != FormatCSV {
		return fmt.Errorf("audit: unknown export format %q (want jsonl or csv)", format)
	}
	if l.closed.Load() {
		return ErrClosed
	}
	rows, err := l.db.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE ts >= ? ORDER BY ts, id`, since.UnixNano())
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	defer rows.Close()
	var cw *csv.Writer
	var enc *json.Encoder
	if format == FormatCSV {
		cw = csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
	} else {
		enc = json.NewEncoder(w)
	}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		if cw != nil {
			err = cw.Write([]string{e.Time.Format(time.RFC3339Nano), e.RequestID, e.ClientIP, e.User,
				e.Ecosystem, e.Package, e.Version, e.Kind, e.Decision, e.Rule, e.Reason, e.Cache,
				strconv.FormatInt(e.Bytes, 10), strconv.Itoa(e.Status)})
		} else {
			err = enc.Encode(e)
		}
		if err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
	}
	return nil
}
