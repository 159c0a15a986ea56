package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/cafilprox/cafilprox/admin"
	"github.com/cafilprox/cafilprox/audit"
	"github.com/cafilprox/cafilprox/cache"
	"github.com/cafilprox/cafilprox/config"
	"github.com/cafilprox/cafilprox/rules"
)

func authUsers(cfg *config.Config) map[string]string {
	if cfg.Auth == nil {
		return nil
	}
	return cfg.Auth.Users
}

// adminCall calls the running proxy's admin API; ok is false when no proxy
// answers (the caller then works offline).
func adminCall(cfg *config.Config, method, path string, body any, out any) (ok bool, err error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+clientAddr(cfg.AdminListen)+path, rd)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+adminTokenFor(cfg))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return false, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		return true, fmt.Errorf("admin API %s: %d %s", path, resp.StatusCode, e.Error)
	}
	return true, json.Unmarshal(b, out)
}

func runCache(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: cafilprox cache stats|purge [flags]"}
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("cache "+sub, stderr)
	var c common
	c.register(fs, false)
	switch sub {
	case "stats":
		if err := fs.Parse(args); err != nil {
			return err
		}
		cfg, err := c.load()
		if err != nil {
			return err
		}
		var live map[string]any
		if ok, err := adminCall(cfg, "GET", "/api/cache/stats", nil, &live); ok && err == nil {
			num := func(k string) float64 { f, _ := live[k].(float64); return f }
			fmt.Fprintf(stdout, "size:      %s of %s\n", humanize.IBytes(uint64(num("size_bytes"))), humanize.IBytes(uint64(num("max_size_bytes"))))
			fmt.Fprintf(stdout, "entries:   %s\n", humanize.Comma(int64(num("entries"))))
			fmt.Fprintf(stdout, "hit ratio: %.1f%% (%s hits, %s misses, %s stale, %s revalidated)\n", 100*num("hit_ratio"),
				humanize.Comma(int64(num("hits"))), humanize.Comma(int64(num("misses"))), humanize.Comma(int64(num("stale"))), humanize.Comma(int64(num("revalidated"))))
			fmt.Fprintf(stdout, "evictions: %s, integrity failures: %s\n", humanize.Comma(int64(num("evictions"))), humanize.Comma(int64(num("integrity_failures"))))
			return nil
		} else if ok {
			return err
		}
		// No proxy running: count the store itself.
		store, err := openStore(cfg)
		if err != nil {
			return err
		}
		var size, n int64
		err = store.List(context.Background(), "", func(i cache.Info) error { size += i.Size; n++; return nil })
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "size:      %s of %s\nentries:   %s\nhit ratio: n/a (the proxy is not running; counters live in the process)\n",
			humanize.IBytes(uint64(size)), humanize.IBytes(uint64(cfg.MaxSize())), humanize.Comma(n))
		return nil
	case "purge":
		eco := fs.String("ecosystem", "", "ecosystem to purge (empty: everything)")
		pkg := fs.String("package", "", "package to purge (needs --ecosystem)")
		ver := fs.String("version", "", "version to purge (needs --package)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if (*pkg != "" && *eco == "") || (*ver != "" && *pkg == "") {
			return usageError{"--package needs --ecosystem and --version needs --package"}
		}
		cfg, err := c.load()
		if err != nil {
			return err
		}
		var res struct{ Purged int }
		if ok, err := adminCall(cfg, "POST", "/api/cache/purge", admin.PurgeRequest{Ecosystem: *eco, Package: *pkg, Version: *ver}, &res); ok {
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "purged %d cached objects\n", res.Purged)
			return nil
		}
		store, err := openStore(cfg)
		if err != nil {
			return err
		}
		name := *pkg
		if name != "" {
			name = rules.Normalize(*eco, name)
		}
		prefix := cache.PurgePrefix(*eco, name, *ver)
		var keys []string
		store.List(context.Background(), prefix, func(i cache.Info) error { keys = append(keys, i.Key); return nil })
		for _, k := range keys {
			if err := store.Delete(context.Background(), k); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "purged %d cached objects (offline)\n", len(keys))
		return nil
	default:
		return usageError{fmt.Sprintf("unknown cache command %q (stats, purge)", sub)}
	}
}

func runAudit(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: cafilprox audit who|blocks|export [flags]"}
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("audit "+sub, stderr)
	var c common
	c.register(fs, false)
	eco := fs.String("ecosystem", "", "only this ecosystem")
	since := fs.String("since", "", "how far back: a duration (24h, 7d) or an RFC 3339 time")
	format := fs.String("format", "jsonl", "export format: jsonl or csv")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	path := filepath.Join(cfg.DataDir, "audit.db")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no audit database at %s (has the proxy run with this data_dir?)", path)
	}
	log, err := audit.Open(path, audit.Options{})
	if err != nil {
		return err
	}
	defer log.Close()
	ctx := context.Background()
	switch sub {
	case "who":
		if fs.NArg() != 1 {
			return usageError{"usage: cafilprox audit who [--ecosystem E] NAME[@VERSION]"}
		}
		name, version := splitNameVersion(fs.Arg(0))
		if *eco != "" {
			name = rules.Normalize(*eco, name)
		}
		rows, err := log.Who(ctx, *eco, name, version)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			fmt.Fprintf(stdout, "no client fetched %s\n", fs.Arg(0))
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ECOSYSTEM\tPACKAGE\tCLIENT\tUSER\tVERSIONS\tCOUNT\tFIRST\tLAST")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Ecosystem, r.Package, r.ClientIP, r.User,
				strings.Join(r.Versions, ","), r.Count, r.First.UTC().Format(time.RFC3339), r.Last.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	case "blocks":
		t, err := admin.ParseSince(*since, 24*time.Hour)
		if err != nil {
			return err
		}
		evs, err := log.Blocks(ctx, t)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tCLIENT\tECOSYSTEM\tPACKAGE\tRULE\tREASON")
		for _, e := range evs {
			if *eco != "" && e.Ecosystem != *eco {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339), e.ClientIP, e.Ecosystem,
				pkgVersion(e.Package, e.Version), e.Rule, e.Reason)
		}
		return tw.Flush()
	case "export":
		t, err := admin.ParseSince(*since, 0)
		if err != nil {
			return err
		}
		if *format != "jsonl" && *format != "csv" {
			return usageError{fmt.Sprintf("unknown --format %q (jsonl, csv)", *format)}
		}
		return log.Export(ctx, stdout, *format, t)
	default:
		return usageError{fmt.Sprintf("unknown audit command %q (who, blocks, export)", sub)}
	}
}

func pkgVersion(p, v string) string {
	if v == "" {
		return p
	}
	return p + "@" + v
}
