package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/cafilprox/cafilprox/ca"
	"github.com/cafilprox/cafilprox/config"
)

// caDir is where the CA lives inside the data directory.
func caDir(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "ca") }

func runEnv(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("env", stderr)
	var c common
	c.register(fs, false)
	shell := fs.String("shell", "sh", "output form: sh, fish, powershell or github ($GITHUB_ENV lines)")
	proxyURL := fs.String("proxy-url", "", "proxy URL clients should use (default: from listen)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	authority, _, err := ca.LoadOrCreate(caDir(cfg))
	if err != nil {
		return err
	}
	// The bundle embeds the system roots, which may have changed since the
	// CA was created; refresh the derived files cheaply on every call.
	if err := authority.WriteTrustFiles(); err != nil {
		return err
	}
	u := *proxyURL
	if u == "" {
		u = "http://" + clientAddr(cfg.Listen)
	}
	vars, err := envVars(u, caDir(cfg))
	if err != nil {
		return err
	}
	return writeEnv(stdout, *shell, vars)
}

// clientAddr turns a listen address into one a local client can dial.
func clientAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

type kv struct{ k, v string }

// envVars lists what each client needs: the proxy, and trust in the CA.
// Variables that REPLACE a client's roots (pip, requests, SSL_CERT_FILE,
// cargo, git) get the bundle of system roots + CA; NODE_EXTRA_CA_CERTS adds
// to Node's roots, so it gets the CA alone.
func envVars(proxyURL, dir string) ([]kv, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	cert := filepath.Join(abs, ca.CertFile)
	bundle := filepath.Join(abs, ca.BundleFile)
	store := filepath.Join(abs, ca.TrustStoreFile)
	noProxy := "localhost,127.0.0.1,::1"
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(proxyURL, "http://"), "https://"))
	java := strings.Join([]string{
		"-Djavax.net.ssl.trustStore=" + store,
		"-Djavax.net.ssl.trustStoreType=PKCS12",
		"-Djavax.net.ssl.trustStorePassword=" + ca.TrustStorePass,
		"-Dhttps.proxyHost=" + host, "-Dhttps.proxyPort=" + port,
		"-Dhttp.proxyHost=" + host, "-Dhttp.proxyPort=" + port,
		"-Dhttp.nonProxyHosts=localhost|127.0.0.1|[::1]",
	}, " ")
	return []kv{
		{"HTTPS_PROXY", proxyURL}, {"https_proxy", proxyURL},
		{"HTTP_PROXY", proxyURL}, {"http_proxy", proxyURL},
		{"NO_PROXY", noProxy}, {"no_proxy", noProxy},
		{"NODE_EXTRA_CA_CERTS", cert},
		// npm's cafile setting (often set machine-wide) replaces Node's
		// roots; the environment outranks user and global npmrc files.
		{"NPM_CONFIG_CAFILE", bundle},
		{"PIP_CERT", bundle},
		{"REQUESTS_CA_BUNDLE", bundle},
		{"SSL_CERT_FILE", bundle},
		{"CURL_CA_BUNDLE", bundle},
		{"CARGO_HTTP_CAINFO", bundle},
		{"GIT_SSL_CAINFO", bundle},
		{"JAVA_TOOL_OPTIONS", java},
	}, nil
}

func writeEnv(w io.Writer, shell string, vars []kv) error {
	var line func(kv) string
	switch shell {
	case "sh", "bash", "zsh":
		line = func(v kv) string { return "export " + v.k + "=" + shQuote(v.v) }
	case "fish":
		line = func(v kv) string { return "set -gx " + v.k + " " + shQuote(v.v) }
	case "powershell", "pwsh":
		line = func(v kv) string { return "$env:" + v.k + " = '" + strings.ReplaceAll(v.v, "'", "''") + "'" }
	case "github":
		// $GITHUB_ENV takes NAME=value lines; values here never hold newlines.
		line = func(v kv) string { return v.k + "=" + v.v }
	default:
		return usageError{fmt.Sprintf("unknown --shell %q (sh, fish, powershell, github)", shell)}
	}
	for _, v := range vars {
		if _, err := fmt.Fprintln(w, line(v)); err != nil {
			return err
		}
	}
	return nil
}

// shQuote single-quotes s for POSIX shells and fish.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func runCA(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: cafilprox ca init|export [flags]"}
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("ca "+sub, stderr)
	var c common
	c.register(fs, false)
	switch sub {
	case "init":
		certFile := fs.String("cert", "", "PEM certificate of your own CA (with --key)")
		keyFile := fs.String("key", "", "PEM private key of your own CA")
		if err := fs.Parse(args); err != nil {
			return err
		}
		cfg, err := c.load()
		if err != nil {
			return err
		}
		if (*certFile == "") != (*keyFile == "") {
			return usageError{"--cert and --key go together"}
		}
		var authority *ca.CA
		if *certFile != "" {
			authority, err = ca.Import(caDir(cfg), *certFile, *keyFile)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "imported CA %q into %s\n", authority.Cert.Subject.CommonName, caDir(cfg))
			return nil
		}
		authority, created, err := ca.LoadOrCreate(caDir(cfg))
		if err != nil {
			return err
		}
		verb := "using existing"
		if created {
			verb = "created"
		}
		fmt.Fprintf(stdout, "%s CA %q in %s\n", verb, authority.Cert.Subject.CommonName, caDir(cfg))
		return nil
	case "export":
		format := fs.String("format", "pem", "pem, der or p12 (PKCS#12 trust store, password "+ca.TrustStorePass+")")
		out := fs.String("out", "-", "output file, - for standard output")
		if err := fs.Parse(args); err != nil {
			return err
		}
		cfg, err := c.load()
		if err != nil {
			return err
		}
		authority, err := ca.Load(caDir(cfg))
		if err != nil {
			return fmt.Errorf("%w (run `cafilprox ca init` or start the proxy once)", err)
		}
		var b []byte
		switch *format {
		case "pem":
			b = authority.PEM()
		case "der":
			b = authority.DER()
		case "p12":
			if b, err = authority.TrustStore(); err != nil {
				return err
			}
		default:
			return usageError{fmt.Sprintf("unknown --format %q (pem, der, p12)", *format)}
		}
		if *out == "-" {
			_, err = stdout.Write(b)
			return err
		}
		return os.WriteFile(*out, b, 0o644)
	default:
		return usageError{fmt.Sprintf("unknown ca command %q (init, export)", sub)}
	}
}
