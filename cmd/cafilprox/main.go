// Command cafilprox runs the Cafilprox package-registry firewall and its
// tools. With no sub-command it serves. Flags come before positional
// arguments: `cafilprox env --shell fish`, `cafilprox policy explain npm left-pad@1.3.0`.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cafilprox/cafilprox/config"
)

// usageError marks errors that should print usage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

var commands = []struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}{
	{"serve", "run the proxy (default)", runServe},
	{"env", "print environment variables that point clients at the proxy", runEnv},
	{"ca", "init|export: manage the root certificate authority", runCA},
	{"policy", "check|explain|test: validate and exercise the policy", runPolicy},
	{"cache", "stats|purge: inspect and empty the cache", runCache},
	{"audit", "who|blocks|export: query the audit trail", runAudit},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" || name == "-h" || name == "--help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name == name {
			err := c.run(args, stdout, stderr)
			if err == nil || errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintln(stderr, "cafilprox "+name+": "+err.Error())
			var ue usageError
			if errors.As(err, &ue) {
				return 2
			}
			return 1
		}
	}
	fmt.Fprintf(stderr, "cafilprox: unknown command %q\n", name)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: cafilprox [command] [flags] [arguments]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nevery command takes --config FILE (default: embedded config; env CAFILPROX_CONFIG)")
}

// common holds the flags every command shares.
type common struct {
	config      string
	listen      string
	adminListen string
	dataDir     string
	logFormat   string
}

func (c *common) register(fs *flag.FlagSet, server bool) {
	fs.StringVar(&c.config, "config", os.Getenv("CAFILPROX_CONFIG"), "configuration file (HCL); empty uses the embedded default")
	fs.StringVar(&c.dataDir, "data-dir", "", "data directory (CA, cache, audit); overrides config and CAFILPROX_DATA_DIR")
	fs.StringVar(&c.listen, "listen", "", "forward proxy address; overrides config and CAFILPROX_LISTEN")
	fs.StringVar(&c.adminListen, "admin-listen", "", "admin address; overrides config and CAFILPROX_ADMIN_LISTEN")
	if server {
		fs.StringVar(&c.logFormat, "log-format", "", `log format "text" or "json"`)
	}
}

// load reads the configuration: file (or embedded default), then
// CAFILPROX_* environment, then flags.
func (c *common) load() (*config.Config, error) {
	cfg, err := config.Load(c.config)
	if err != nil {
		return nil, err
	}
	cfg.ApplyEnv(os.Getenv)
	for _, o := range []struct {
		dst *string
		v   string
	}{{&cfg.Listen, c.listen}, {&cfg.AdminListen, c.adminListen}, {&cfg.DataDir, c.dataDir}, {&cfg.LogFormat, c.logFormat}} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	return cfg, nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cafilprox "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
