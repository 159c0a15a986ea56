package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"
)

// First-seen memory (the data behind pkg.first_seen and pkg.retagged).
//
// The seen table holds one durable row per (ecosystem, package, version):
// when Cafilprox first saw the version in upstream metadata and the content
// reference it had then (an artifact digest, a Composer dist reference, a
// CocoaPods source commit: whatever the classifier says identifies the
// content). Rows are never pruned.
//
// Writes are synchronous but batched per package: the pipeline calls
// MarkSeen once per upstream metadata fetch with every version in the
// document, and MarkSeen reads the package's rows and inserts only the new
// ones, in one transaction. Metadata is fetched at most once per
// metadata_ttl per package, so this costs one short transaction per fetch,
// never one per request.
//
// Bootstrap: when a package is seen for the first time (no row at all),
// every version listed then is stored as a baseline row. Its first-seen
// time is the time of that sighting, which says nothing about when the
// version was published, so FirstSeen reports it as unknown and the policy
// falls back to the registry's published time. Only versions that appear
// later are "new" with a trustworthy first-seen time. So a fresh
// deployment does not make every existing version look brand new; the
// price is that a package first met while it is already malicious gets no
// first-seen protection (pkg.package_age and feeds cover that case).

// Seen is what the database remembers about one version.
type Seen struct {
	// FirstSeen is when the version was first listed in upstream metadata.
	FirstSeen time.Time `json:"first_seen"`
	// Ref is the content reference at first sight; empty when the
	// ecosystem gave none then.
	Ref string `json:"ref,omitempty"`
	// Baseline is true when the version was already listed the first time
	// the package was seen, so FirstSeen is not its arrival time.
	Baseline bool `json:"baseline,omitempty"`
	// LastRef is the latest reference seen that differs from Ref; empty
	// when the content never changed.
	LastRef string `json:"last_ref,omitempty"`
}

// Retagged reports whether ref differs from the reference first seen. An
// empty ref on either side is no evidence of a change.
func (s Seen) Retagged(ref string) bool {
	return s.Ref != "" && ref != "" && s.Ref != ref
}

// SeenResult is what MarkSeen learned.
type SeenResult struct {
	// Versions holds every known version of the package after the update.
	Versions map[string]Seen
	// New lists versions seen for the first time in this call, sorted.
	New []string
	// Retagged lists versions whose reference now differs from the first
	// seen one, sorted. They deserve a loud log line and a metric.
	Retagged []string
}

// MarkSeen records that versions of a package are listed in upstream
// metadata now, with their content references (refs may be nil or lack
// versions; versions only present in refs are recorded too). The first
// reference stored for a version is kept forever; a different later one is
// reported as re-tagged and kept in LastRef, never replacing Ref.
func (l *Log) MarkSeen(ctx context.Context, eco, pkg string, versions []string, refs map[string]string) (SeenResult, error) {
	if l.closed.Load() {
		return SeenResult{}, ErrClosed
	}
	all := make(map[string]string, len(versions))
	for _, v := range versions {
		all[v] = refs[v]
	}
	for v, r := range refs {
		all[v] = r
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return SeenResult{}, fmt.Errorf("audit: mark seen %s/%s: %w", eco, pkg, err)
	}
	defer tx.Rollback()
	known, err := querySeen(ctx, tx, eco, pkg)
	if err != nil {
		return SeenResult{}, err
	}
	res := SeenResult{Versions: known}
	baseline := len(known) == 0
	t := now()
	var ins, fill, relabel *sql.Stmt
	for v, ref := range all {
		s, ok := known[v]
		switch {
		case !ok:
			if ins == nil {
				if ins, err = tx.PrepareContext(ctx, `INSERT INTO seen (ecosystem, package, version, first_seen, ref, baseline) VALUES (?, ?, ?, ?, ?, ?)`); err != nil {
					return SeenResult{}, fmt.Errorf("audit: mark seen %s/%s: %w", eco, pkg, err)
				}
				defer ins.Close()
			}
			if _, err := ins.ExecContext(ctx, eco, pkg, v, t.UnixNano(), ref, baseline); err != nil {
				return SeenResult{}, fmt.Errorf("audit: mark seen %s/%s@%s: %w", eco, pkg, v, err)
			}
			known[v] = Seen{FirstSeen: t.UTC(), Ref: ref, Baseline: baseline}
			res.New = append(res.New, v)
		case s.Ref == "" && ref != "":
			// The first reference we learn is the one to compare against.
			if fill == nil {
				if fill, err = tx.PrepareContext(ctx, `UPDATE seen SET ref = ? WHERE ecosystem = ? AND package = ? AND version = ?`); err != nil {
					return SeenResult{}, fmt.Errorf("audit: mark seen %s/%s: %w", eco, pkg, err)
				}
				defer fill.Close()
			}
			if _, err := fill.ExecContext(ctx, ref, eco, pkg, v); err != nil {
				return SeenResult{}, fmt.Errorf("audit: mark seen %s/%s@%s: %w", eco, pkg, v, err)
			}
			s.Ref = ref
			known[v] = s
		case s.Retagged(ref):
			res.Retagged = append(res.Retagged, v)
			if s.LastRef != ref {
				if relabel == nil {
					if relabel, err = tx.PrepareContext(ctx, `UPDATE seen SET last_ref = ? WHERE ecosystem = ? AND package = ? AND version = ?`); err != nil {
						return SeenResult{}, fmt.Errorf("audit: mark seen %s/%s: %w", eco, pkg, err)
					}
					defer relabel.Close()
				}
				if _, err := relabel.ExecContext(ctx, ref, eco, pkg, v); err != nil {
					return SeenResult{}, fmt.Errorf("audit: mark seen %s/%s@%s: %w", eco, pkg, v, err)
				}
				s.LastRef = ref
				known[v] = s
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return SeenResult{}, fmt.Errorf("audit: mark seen %s/%s: %w", eco, pkg, err)
	}
	sort.Strings(res.New)
	sort.Strings(res.Retagged)
	return res, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func querySeen(ctx context.Context, q querier, eco, pkg string) (map[string]Seen, error) {
	rows, err := q.QueryContext(ctx, `SELECT version, first_seen, ref, baseline, last_ref FROM seen WHERE ecosystem = ? AND package = ?`, eco, pkg)
	if err != nil {
		return nil, fmt.Errorf("audit: read seen %s/%s: %w", eco, pkg, err)
	}
	defer rows.Close()
	out := map[string]Seen{}
	for rows.Next() {
		var v string
		var ts int64
		var s Seen
		if err := rows.Scan(&v, &ts, &s.Ref, &s.Baseline, &s.LastRef); err != nil {
			return nil, fmt.Errorf("audit: read seen %s/%s: %w", eco, pkg, err)
		}
		s.FirstSeen = time.Unix(0, ts).UTC()
		out[v] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: read seen %s/%s: %w", eco, pkg, err)
	}
	return out, nil
}

// SeenVersions returns what is known about every version of a package (an
// empty map when the package was never seen). Use it when deciding on many
// versions at once, e.g. while filtering a metadata document.
func (l *Log) SeenVersions(ctx context.Context, eco, pkg string) (map[string]Seen, error) {
	if l.closed.Load() {
		return nil, ErrClosed
	}
	return querySeen(ctx, l.db, eco, pkg)
}

// Lookup returns what is known about one version; ok is false when it was
// never seen.
func (l *Log) Lookup(ctx context.Context, eco, pkg, version string) (s Seen, ok bool, err error) {
	if l.closed.Load() {
		return Seen{}, false, ErrClosed
	}
	var ts int64
	err = l.lookup.QueryRowContext(ctx, eco, pkg, version).Scan(&ts, &s.Ref, &s.Baseline, &s.LastRef)
	if errors.Is(err, sql.ErrNoRows) {
		return Seen{}, false, nil
	}
	if err != nil {
		return Seen{}, false, fmt.Errorf("audit: lookup %s/%s@%s: %w", eco, pkg, version, err)
	}
	s.FirstSeen = time.Unix(0, ts).UTC()
	return s, true, nil
}

// FirstSeen returns when a version first appeared in upstream metadata. ok
// is false when the version was never seen, when it belongs to the baseline
// (already listed at the package's first sighting, see the bootstrap note
// above) or when the database cannot answer: in all three cases the policy
// must fall back to the registry's published time.
func (l *Log) FirstSeen(ctx context.Context, eco, pkg, version string) (time.Time, bool) {
	s, ok, err := l.Lookup(ctx, eco, pkg, version)
	if err != nil || !ok || s.Baseline {
		return time.Time{}, false
	}
	return s.FirstSeen, true
}

// Retagged reports whether ref differs from the reference the version had
// when first seen. Unknown versions and empty references are not re-tagged;
// database errors answer false (fail open) because MarkSeen, on the metadata
// path, is where re-tagging is reliably detected.
func (l *Log) Retagged(ctx context.Context, eco, pkg, version, ref string) bool {
	s, ok, err := l.Lookup(ctx, eco, pkg, version)
	return err == nil && ok && s.Retagged(ref)
}
