// Package config loads cafilprox.hcl: the listeners, data directory, egress,
// cache and per-ecosystem settings. Policy blocks (policy, rule, feed,
// client, internal, test) are handed on untouched in Config.Policy for the
// rules package to decode, so that one file holds everything and every error
// is reported with file:line:column.
package config

import (
	_ "embed"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/cafilprox/cafilprox/classifiers"
)

// Default is the embedded configuration used when no file is given.
//
//go:embed default.hcl
var Default []byte

// DefaultName is the file name reported in diagnostics of the embedded config.
const DefaultName = "<embedded default.hcl>"

// Config is the whole file. Zero values mean "use the default" throughout.
type Config struct {
	Listen         string `hcl:"listen,optional"`
	AdminListen    string `hcl:"admin_listen,optional"`
	DataDir        string `hcl:"data_dir,optional"`
	UpstreamCAFile string `hcl:"upstream_ca_file,optional"` // extra CA trusted for upstream registries (added to system roots)
	UpstreamProxy  string `hcl:"upstream_proxy,optional"`   // corporate proxy to chain to; empty = connect directly
	LogFormat      string `hcl:"log_format,optional"`       // "text" (default) or "json"

	Egress      *Egress      `hcl:"egress,block"`
	Cache       *Cache       `hcl:"cache,block"`
	Ecosystems  []Ecosystem  `hcl:"ecosystem,block"`
	Auth        *Auth        `hcl:"auth,block"`
	Admin       *Admin       `hcl:"admin,block"`
	Limits      *Limits      `hcl:"limits,block"`
	DNS         *DNS         `hcl:"dns,block"`
	Transparent *Transparent `hcl:"transparent,block"`
	Audit       *Audit       `hcl:"audit,block"`

	// Policy holds the remaining blocks for the rules package.
	Policy hcl.Body `hcl:",remain"`

	// File is the path the configuration was read from (DefaultName when embedded).
	File string
	// Files holds the parsed sources, for rendering diagnostics.
	Files map[string]*hcl.File
}

// Egress says what happens to hosts that are not registries.
type Egress struct {
	UnknownHosts string   `hcl:"unknown_hosts,optional"` // "tunnel" (default) or "deny"
	AllowHosts   []string `hcl:"allow_hosts,optional"`   // tunnelled even when unknown_hosts = "deny"; "*.example.com" globs allowed
	// InterceptHosts are extra hosts decrypted and passed through the pipeline
	// unfiltered (for example source hosts of Composer dists).
	InterceptHosts []string `hcl:"intercept_hosts,optional"`
}

// Cache configures the artifact and metadata cache.
type Cache struct {
	Backend      string `hcl:"backend,optional"`        // "fs" (default) or "s3"
	Dir          string `hcl:"dir,optional"`            // fs: default <data_dir>/cache
	MaxSize      string `hcl:"max_size,optional"`       // go-humanize size, default 20GiB
	MetadataTTL  string `hcl:"metadata_ttl,optional"`   // default 5m
	StaleIfError string `hcl:"stale_if_error,optional"` // default 72h
	NegativeTTL  string `hcl:"negative_ttl,optional"`   // default 1m
	S3           *S3    `hcl:"s3,block"`
}

// S3 configures the S3-compatible cache backend.
type S3 struct {
	Endpoint  string `hcl:"endpoint"`
	Bucket    string `hcl:"bucket"`
	Prefix    string `hcl:"prefix,optional"`
	Region    string `hcl:"region,optional"`
	AccessKey string `hcl:"access_key,optional"` // default env AWS_ACCESS_KEY_ID
	SecretKey string `hcl:"secret_key,optional"` // default env AWS_SECRET_ACCESS_KEY
	Insecure  bool   `hcl:"insecure,optional"`   // plain http endpoint
	CAFile    string `hcl:"ca_file,optional"`    // extra CA for a TLS endpoint
}

// Ecosystem overrides one ecosystem's upstream and settings.
type Ecosystem struct {
	Name string `hcl:"name,label"`
	// Upstream replaces scheme and host of every request to the ecosystem's
	// hosts; its path is prefixed to the request path. Empty = the real registry.
	Upstream    string   `hcl:"upstream,optional"`
	Hosts       []string `hcl:"hosts,optional"` // replaces the default hosts
	MetadataTTL string   `hcl:"metadata_ttl,optional"`
	MinAge      string   `hcl:"min_age,optional"`
	Disabled    bool     `hcl:"disabled,optional"` // do not intercept this ecosystem
	// Audit says what happens to npm audit requests (/-/npm/v1/security/...):
	// "pass" (default) forwards them, "deny" refuses them (keeps the
	// dependency list inside the network).
	Audit string `hcl:"audit,optional"`
	// InternalUpstream, when set, serves names matched by the policy's
	// internal block from this private registry instead of refusing them
	// (dependency confusion: internal names never reach the public one).
	InternalUpstream string `hcl:"internal_upstream,optional"`
}

// Auth requires proxy basic authentication when set.
type Auth struct {
	Users map[string]string `hcl:"users,optional"` // user -> password (or token)
	Realm string            `hcl:"realm,optional"`
}

// Admin configures the admin listener.
type Admin struct {
	Token string `hcl:"token,optional"` // bearer token; env CAFILPROX_ADMIN_TOKEN overrides
}

// Limits protect the proxy from misbehaving clients.
type Limits struct {
	RequestsPerSecond float64 `hcl:"requests_per_second,optional"`
	Burst             int     `hcl:"burst,optional"`
	MaxConcurrent     int     `hcl:"max_concurrent,optional"`
	MaxBody           string  `hcl:"max_body,optional"`
	MaxHeader         string  `hcl:"max_header,optional"`
}

// DNS configures the DNS redirector.
type DNS struct {
	Listen   string   `hcl:"listen"`
	Answer   []string `hcl:"answer"`
	Upstream []string `hcl:"upstream,optional"`
	TTL      int      `hcl:"ttl,optional"`
}

// Transparent configures listeners for redirected traffic.
type Transparent struct {
	HTTPSListen string `hcl:"https_listen,optional"`
	HTTPListen  string `hcl:"http_listen,optional"`
}

// Audit configures the audit trail.
type Audit struct {
	Retention string `hcl:"retention,optional"` // default 90d
	Disabled  bool   `hcl:"disabled,optional"`
}

// Load reads and validates a configuration file; an empty path loads the
// embedded default. Errors carry file:line:column.
func Load(path string) (*Config, error) {
	src, name := Default, DefaultName
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		src, name = b, path
	}
	return Parse(src, name)
}

// Parse decodes configuration source; name is used in diagnostics.
func Parse(src []byte, name string) (*Config, error) {
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, name)
	if diags.HasErrors() {
		return nil, &Error{Diags: diags, Files: p.Files()}
	}
	c := &Config{File: name, Files: p.Files()}
	if diags := gohcl.DecodeBody(f.Body, nil, c); diags.HasErrors() {
		return nil, &Error{Diags: diags, Files: p.Files()}
	}
	if diags := c.validate(f.Body); diags.HasErrors() {
		return nil, &Error{Diags: diags, Files: p.Files()}
	}
	c.applyDefaults()
	return c, nil
}

// Error is a configuration error with HCL diagnostics.
type Error struct {
	Diags hcl.Diagnostics
	Files map[string]*hcl.File
}

func (e *Error) Error() string { return FormatDiags(e.Diags) }

// FormatDiags renders diagnostics one per line as file:line:col: summary: detail.
func FormatDiags(diags hcl.Diagnostics) string {
	var b strings.Builder
	for i, d := range diags {
		if i > 0 {
			b.WriteByte('\n')
		}
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		b.WriteString(d.Summary)
		if d.Detail != "" {
			b.WriteString("; " + d.Detail)
		}
	}
	return b.String()
}

func (c *Config) validate(body hcl.Body) hcl.Diagnostics {
	var diags hcl.Diagnostics
	attrs, _ := body.JustAttributes()
	rangeOf := func(name string) *hcl.Range {
		if a, ok := attrs[name]; ok {
			return a.Expr.Range().Ptr()
		}
		return nil
	}
	bad := func(name, summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rangeOf(name)})
	}
	for _, l := range []struct{ name, val string }{{"listen", c.Listen}, {"admin_listen", c.AdminListen}} {
		if l.val == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.val); err != nil {
			bad(l.name, "Invalid listen address", fmt.Sprintf("%q: %v", l.val, err))
		}
	}
	if c.LogFormat != "" && c.LogFormat != "text" && c.LogFormat != "json" {
		bad("log_format", "Invalid log_format", `must be "text" or "json"`)
	}
	// Block-level checks report the block's own range via a content decode.
	content, _, _ := body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "egress"}, {Type: "cache"}, {Type: "ecosystem", LabelNames: []string{"name"}},
	}})
	blockRange := func(typ string, label string) *hcl.Range {
		for _, b := range content.Blocks {
			if b.Type == typ && (label == "" || (len(b.Labels) > 0 && b.Labels[0] == label)) {
				r := b.DefRange
				return &r
			}
		}
		return nil
	}
	blockErr := func(typ, label, summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: blockRange(typ, label)})
	}
	if e := c.Egress; e != nil && e.UnknownHosts != "" && e.UnknownHosts != "tunnel" && e.UnknownHosts != "deny" {
		blockErr("egress", "", "Invalid unknown_hosts", `must be "tunnel" or "deny"`)
	}
	if k := c.Cache; k != nil {
		if k.MaxSize != "" {
			if _, err := humanize.ParseBytes(k.MaxSize); err != nil {
				blockErr("cache", "", "Invalid max_size", fmt.Sprintf("%q is not a size (use e.g. 500MiB, 20GiB)", k.MaxSize))
			}
		}
		for _, d := range []struct{ n, v string }{{"metadata_ttl", k.MetadataTTL}, {"stale_if_error", k.StaleIfError}, {"negative_ttl", k.NegativeTTL}} {
			if _, err := ParseDuration(d.v); d.v != "" && err != nil {
				blockErr("cache", "", "Invalid "+d.n, err.Error())
			}
		}
		if k.Backend != "" && k.Backend != "fs" && k.Backend != "s3" {
			blockErr("cache", "", "Invalid backend", `must be "fs" or "s3"`)
		}
		if k.Backend == "s3" && k.S3 == nil {
			blockErr("cache", "", "Missing s3 block", `backend = "s3" needs an s3 { endpoint bucket } block`)
		}
	}
	seen := map[string]bool{}
	for _, e := range c.Ecosystems {
		if !isEcosystem(e.Name) {
			blockErr("ecosystem", e.Name, "Unknown ecosystem", fmt.Sprintf("%q is not one of %s", e.Name, strings.Join(classifiers.Ecosystems, ", ")))
			continue
		}
		if seen[e.Name] {
			blockErr("ecosystem", e.Name, "Duplicate ecosystem block", e.Name+" is configured twice")
		}
		seen[e.Name] = true
		for _, u := range []struct{ n, v string }{{"upstream", e.Upstream}, {"internal_upstream", e.InternalUpstream}} {
			if u.v == "" {
				continue
			}
			if err := checkURL(u.v); err != nil {
				blockErr("ecosystem", e.Name, "Invalid "+u.n, err.Error())
			}
		}
		if e.Audit != "" && e.Audit != "pass" && e.Audit != "deny" {
			blockErr("ecosystem", e.Name, "Invalid audit", `must be "pass" or "deny"`)
		}
		for _, d := range []struct{ n, v string }{{"metadata_ttl", e.MetadataTTL}, {"min_age", e.MinAge}} {
			if _, err := ParseDuration(d.v); d.v != "" && err != nil {
				blockErr("ecosystem", e.Name, "Invalid "+d.n, err.Error())
			}
		}
	}
	return diags
}

func isEcosystem(name string) bool {
	for _, e := range classifiers.Ecosystems {
		if e == name {
			return true
		}
	}
	return false
}

func checkURL(s string) error {
	if !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
		return fmt.Errorf("%q must start with https:// or http://", s)
	}
	return nil
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.AdminListen == "" {
		c.AdminListen = "127.0.0.1:8081"
	}
	if c.DataDir == "" {
		c.DataDir = "./.cafilprox"
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
	}
	if c.Egress == nil {
		c.Egress = &Egress{}
	}
	if c.Egress.UnknownHosts == "" {
		c.Egress.UnknownHosts = "tunnel"
	}
	if c.Egress.InterceptHosts == nil {
		// Composer dists are downloaded from GitHub's API hosts; decrypting
		// them lets the pipeline judge dists attributed from metadata. A
		// refused dist makes Composer clone the source from github.com:
		// decrypting it lets the pipeline refuse that fallback (mitm/gitsource.go).
		c.Egress.InterceptHosts = []string{"api.github.com", "codeload.github.com", "github.com"}
	}
	if c.Cache == nil {
		c.Cache = &Cache{}
	}
	if c.Cache.Backend == "" {
		c.Cache.Backend = "fs"
	}
	if c.Admin == nil {
		c.Admin = &Admin{}
	}
	if c.Limits == nil {
		c.Limits = &Limits{}
	}
	if c.Audit == nil {
		c.Audit = &Audit{}
	}
}

// ApplyEnv overrides settings from CAFILPROX_* environment variables
// (CAFILPROX_LISTEN, CAFILPROX_ADMIN_LISTEN, CAFILPROX_DATA_DIR,
// CAFILPROX_ADMIN_TOKEN, CAFILPROX_LOG_FORMAT, CAFILPROX_UPSTREAM_PROXY).
func (c *Config) ApplyEnv(getenv func(string) string) {
	set := func(dst *string, key string) {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	set(&c.Listen, "CAFILPROX_LISTEN")
	set(&c.AdminListen, "CAFILPROX_ADMIN_LISTEN")
	set(&c.DataDir, "CAFILPROX_DATA_DIR")
	set(&c.Admin.Token, "CAFILPROX_ADMIN_TOKEN")
	set(&c.LogFormat, "CAFILPROX_LOG_FORMAT")
	set(&c.UpstreamProxy, "CAFILPROX_UPSTREAM_PROXY")
}

// Ecosystem returns the block for name, or an empty one.
func (c *Config) Ecosystem(name string) Ecosystem {
	for _, e := range c.Ecosystems {
		if e.Name == name {
			return e
		}
	}
	return Ecosystem{Name: name}
}

// Path resolves p relative to the data directory unless it is absolute.
func (c *Config) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}

// Durations and sizes, parsed; validate has already checked them.

// MaxSize returns the cache size bound in bytes.
func (c *Config) MaxSize() int64 {
	if c.Cache.MaxSize == "" {
		return 20 << 30
	}
	n, _ := humanize.ParseBytes(c.Cache.MaxSize)
	return int64(n)
}

// Duration parses an already validated duration, returning def when empty.
func Duration(s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := ParseDuration(s)
	if err != nil {
		return def
	}
	return d
}

// ParseDuration accepts Go durations plus the units d (24h) and w (7d),
// which policies need ("10d"); units may be combined ("1w2d12h").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("config: empty duration")
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') && rest[j] != '.' {
			j++
		}
		if i == 0 || j == i {
			return 0, fmt.Errorf("config: invalid duration %q (use e.g. 90s, 5m, 12h, 10d, 2w)", s)
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		var mult time.Duration
		switch unit {
		case "d":
			mult = 24 * time.Hour
		case "w":
			mult = 7 * 24 * time.Hour
		default:
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("config: invalid duration %q (use e.g. 90s, 5m, 12h, 10d, 2w)", s)
			}
			total += d
			continue
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("config: invalid duration %q", s)
		}
		total += time.Duration(f * float64(mult))
	}
	return total, nil
}
