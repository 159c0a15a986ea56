package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Download attribution memory: which package version a download URL named
// in served metadata belongs to (Composer dists, CocoaPods sources, whose
// URLs name neither). The proxy keeps the mapping in memory too; the table
// makes it survive restarts, so that a lockfile install after a restart,
// which fetches dists without metadata, is still judged. Rows are never
// pruned: one short row per distinct download URL.

// RememberDownloads records that each URL (a key of urls, in the proxy's
// normalised form) downloads the given version (its value) of a package.
// A URL re-used by another version is re-attributed to the newest claim.
func (l *Log) RememberDownloads(ctx context.Context, eco, pkg string, urls map[string]string) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if len(urls) == 0 {
		return nil
	}
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: remember downloads of %s/%s: %w", eco, pkg, err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO downloads (url, ecosystem, package, version) VALUES (?, ?, ?, ?)
ON CONFLICT(url) DO UPDATE SET ecosystem = excluded.ecosystem, package = excluded.package, version = excluded.version`)
	if err != nil {
		return fmt.Errorf("audit: remember downloads of %s/%s: %w", eco, pkg, err)
	}
	defer st.Close()
	for u, v := range urls {
		if _, err := st.ExecContext(ctx, u, eco, pkg, v); err != nil {
			return fmt.Errorf("audit: remember a download of %s/%s@%s: %w", eco, pkg, v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: remember downloads of %s/%s: %w", eco, pkg, err)
	}
	return nil
}

// Download returns the package version a URL was attributed to; ok is
// false when no served metadata ever named it.
func (l *Log) Download(ctx context.Context, url string) (eco, pkg, version string, ok bool, err error) {
	if l.closed.Load() {
		return "", "", "", false, ErrClosed
	}
	err = l.download.QueryRowContext(ctx, url).Scan(&eco, &pkg, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", "", false, nil
	}
	if err != nil {
		return "", "", "", false, fmt.Errorf("audit: download lookup: %w", err)
	}
	return eco, pkg, version, true, nil
}
