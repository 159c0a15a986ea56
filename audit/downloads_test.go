package audit

import (
	"context"
	"path/filepath"
	"testing"
)

func TestDownloadsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = l.RememberDownloads(ctx, "composer", "acme/lib", map[string]string{
		"api.github.com/repos/acme/lib/zipball/aaa": "1.0.0",
		"api.github.com/repos/acme/lib/zipball/bbb": "1.1.0",
	})
	if err != nil {
		t.Fatal(err)
	}
	// A URL claimed again (a branch zipball moved to another version) follows the newest claim.
	if err := l.RememberDownloads(ctx, "composer", "acme/lib", map[string]string{"api.github.com/repos/acme/lib/zipball/bbb": "1.2.0"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for url, want := range map[string]string{
		"api.github.com/repos/acme/lib/zipball/aaa": "1.0.0",
		"api.github.com/repos/acme/lib/zipball/bbb": "1.2.0",
	} {
		eco, pkg, version, ok, err := l.Download(ctx, url)
		if err != nil || !ok || eco != "composer" || pkg != "acme/lib" || version != want {
			t.Errorf("Download(%s) = %q %q %q %v %v, want composer acme/lib %s", url, eco, pkg, version, ok, err, want)
		}
	}
	if _, _, _, ok, err := l.Download(ctx, "api.github.com/repos/acme/lib/zipball/ccc"); ok || err != nil {
		t.Errorf("an unknown URL is attributed (ok=%v, err=%v)", ok, err)
	}
}
