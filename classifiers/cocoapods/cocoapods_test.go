package cocoapods

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/internal/classifiertest"
)

func TestShardFor(t *testing.T) {
	lines, err := ParseShard(classifiertest.ReadFile(t, "all_pods_versions_2_0_9.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if got := ShardFor(l.Pod); got != "2_0_9" {
			t.Errorf("%s: got %v, want 2_0_9", l.Pod, got)
		}
	}
	if got, want := ShardFor("SDWebImage"), "1_1_7"; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, want := PodspecURL("BeaconKit", "1.0.5"), "https://cdn.cocoapods.org/Specs/2/0/9/BeaconKit/1.0.5/BeaconKit.podspec.json"; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestClassify(t *testing.T) {
	const (
		meta  = classifiers.KindMetadata
		other = classifiers.KindOther
	)
	tests := []struct {
		path string
		want classifiers.Request
	}{
		{"/all_pods_versions_2_0_9.txt", classifiers.Request{Kind: meta, Variant: VariantShard}},
		{"/all_pods_versions_a_f_0.txt", classifiers.Request{Kind: meta, Variant: VariantShard}},
		{"/all_pods_versions_2_0.txt", classifiers.Request{Kind: other}},
		{"/all_pods_versions_g_0_9.txt", classifiers.Request{Kind: other}},
		{"/Specs/2/0/9/BeaconKit/1.0.5/BeaconKit.podspec.json", classifiers.Request{Kind: meta, Variant: VariantPodspec, Package: "BeaconKit", Version: "1.0.5"}},
		{"/Specs/1/1/7/SDWebImage/4.0.0/SDWebImage.podspec.json", classifiers.Request{Kind: meta, Variant: VariantPodspec, Package: "SDWebImage", Version: "4.0.0"}},
		{"/Specs/1/1/7/SDWebImage/4.0.0-beta2/SDWebImage.podspec.json", classifiers.Request{Kind: meta, Variant: VariantPodspec, Package: "SDWebImage", Version: "4.0.0-beta2"}},
		{"/Specs/1/1/7/SDWebImage/4.0.0/Other.podspec.json", classifiers.Request{Kind: other}},
		{"/Specs/1/1/7/SDWebImage/4.0.0/SDWebImage.podspec", classifiers.Request{Kind: other}},
		{"/Specs/1/1/SDWebImage/4.0.0/SDWebImage.podspec.json", classifiers.Request{Kind: other}},
		{"/Specs/1/1/7/../4.0.0/...podspec.json", classifiers.Request{Kind: other}},
		{"/CocoaPods-version.yml", classifiers.Request{Kind: other}},
		{"/deprecated_podspecs.txt", classifiers.Request{Kind: other}},
		{"/all_pods.txt", classifiers.Request{Kind: other}},
		{"/", classifiers.Request{Kind: other}},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "https://cdn.cocoapods.org/", nil)
			r.URL.Path = tt.path
			tt.want.Ecosystem = classifiers.CocoaPods
			if got := c.Classify(r); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	c := New()
	tests := []struct {
		name, file string
		req        classifiers.Request
		want       []classifiers.Version
	}{
		{"beaconkit podspec", "BeaconKit-1.0.5.podspec.json", classifiers.Request{Package: "BeaconKit", Version: "1.0.5", Variant: VariantPodspec},
			[]classifiers.Version{{Version: "1.0.5", License: "MIT", Ref: "1.0.5", ArtifactURLs: []string{"https://github.com/igor-makarov/BeaconKit.git"}}}},
		{"sdwebimage podspec", "SDWebImage-4.0.0.podspec.json", classifiers.Request{Package: "SDWebImage", Version: "4.0.0", Variant: VariantPodspec},
			[]classifiers.Version{{Version: "4.0.0", License: "MIT", Ref: "4.0.0", ArtifactURLs: []string{"https://github.com/rs/SDWebImage.git"}}}},
		{"shard for beaconkit", "all_pods_versions_2_0_9.txt", classifiers.Request{Package: "BeaconKit", Variant: VariantShard},
			[]classifiers.Version{{Version: "1.0.0"}, {Version: "1.0.1"}, {Version: "1.0.2"}, {Version: "1.0.3"}, {Version: "1.0.4"}, {Version: "1.0.5"}, {Version: "1.0.6"}}},
		{"shard without package", "all_pods_versions_2_0_9.txt", classifiers.Request{Variant: VariantShard}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md, err := c.Parse(tt.req, classifiertest.ReadFile(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(md.Versions, tt.want) {
				t.Errorf("got %+v, want %+v", md.Versions, tt.want)
			}
		})
	}
	t.Run("http source with license object", func(t *testing.T) {
		body := `{"name":"X","version":"1.0","license":{"type":"Apache-2.0","file":"LICENSE"},"source":{"http":"https://example.org/x.zip","sha256":"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"}}`
		md, err := c.Parse(classifiers.Request{Variant: VariantPodspec}, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		want := classifiers.Version{Version: "1.0", License: "Apache-2.0", Integrity: "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", ArtifactURLs: []string{"https://example.org/x.zip"}}
		if md.Package != "X" || !reflect.DeepEqual(md.Versions[0], want) {
			t.Errorf("got %v %+v, want X %+v", md.Package, md.Versions[0], want)
		}
	})
}

func TestFilter(t *testing.T) {
	c := New()
	shard := classifiertest.ReadFile(t, "all_pods_versions_2_0_9.txt")
	for _, req := range []classifiers.Request{{Variant: VariantShard}, {Variant: VariantPodspec}} {
		body := shard
		if req.Variant == VariantPodspec {
			body = classifiertest.ReadFile(t, "BeaconKit-1.0.5.podspec.json")
		}
		out, err := c.Filter(req, body, func(string) bool { return false })
		if err != nil || !bytes.Equal(out, body) {
			t.Errorf("%s: got %d bytes (%v), want the body unchanged", req.Variant, len(out), err)
		}
	}
}

func TestFilterShard(t *testing.T) {
	shard := classifiertest.ReadFile(t, "all_pods_versions_2_0_9.txt")
	tests := []struct {
		name string
		keep func(pod, v string) bool
	}{
		{"shard-drop-beaconkit-1.0.6", func(pod, v string) bool { return pod != "BeaconKit" || v != "1.0.6" }},
		{"shard-drop-boris", func(pod, v string) bool { return pod != "Boris" }},
		{"shard-drop-prereleases", func(pod, v string) bool { return !strings.Contains(v, "-") }},
	}
	c := New()
	orig, _ := ParseShard(shard)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.FilterShard(shard, tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			classifiertest.Golden(t, tt.name+".golden", out)
			got, err := ParseShard(out)
			if err != nil {
				t.Fatal(err)
			}
			var want []ShardLine
			for _, l := range orig {
				var vs []string
				for _, v := range l.Versions {
					if tt.keep(l.Pod, v) {
						vs = append(vs, v)
					}
				}
				if len(vs) > 0 {
					want = append(want, ShardLine{l.Pod, vs})
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	out, err := c.FilterShard(shard, func(string, string) bool { return true })
	if err != nil || !bytes.Equal(out, shard) {
		t.Errorf("keep all: got %d bytes (%v), want the shard unchanged", len(out), err)
	}
}

func TestMalformed(t *testing.T) {
	c := New()
	for _, body := range []string{"Name//1.0\n", "/1.0\n", "Na me/1.0\n", "Name/1.0/\n"} {
		if _, err := c.Parse(classifiers.Request{Variant: VariantShard}, []byte(body)); !errors.Is(err, classifiers.ErrMalformed) {
			t.Errorf("Parse(%q): got %v, want ErrMalformed", body, err)
		}
		if _, err := c.FilterShard([]byte(body), func(string, string) bool { return true }); !errors.Is(err, classifiers.ErrMalformed) {
			t.Errorf("FilterShard(%q): got %v, want ErrMalformed", body, err)
		}
	}
	for _, body := range []string{"", "<html>", `{"name":"X"}`, `[]`} {
		if _, err := c.Parse(classifiers.Request{Variant: VariantPodspec}, []byte(body)); !errors.Is(err, classifiers.ErrMalformed) {
			t.Errorf("Parse podspec %q: got %v, want ErrMalformed", body, err)
		}
	}
}

func TestFacts(t *testing.T) {
	var got []string
	f := classifiers.FetcherFunc(func(_ context.Context, u string, _ http.Header) ([]byte, http.Header, error) {
		got = append(got, u)
		switch u {
		case "https://cdn.cocoapods.org/all_pods_versions_2_0_9.txt":
			return classifiertest.ReadFile(t, "all_pods_versions_2_0_9.txt"), nil, nil
		case "https://cdn.cocoapods.org/Specs/2/0/9/BeaconKit/1.0.5/BeaconKit.podspec.json":
			return classifiertest.ReadFile(t, "BeaconKit-1.0.5.podspec.json"), nil, nil
		}
		return nil, nil, &classifiers.StatusError{URL: u, Status: 404}
	})
	c := New()
	md, err := c.Facts(context.Background(), classifiers.Request{Package: "BeaconKit", Version: "1.0.5"}, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Errorf("got fetches %v, want shard and podspec", got)
	}
	if len(md.Versions) != 7 {
		t.Errorf("got %d versions, want 7", len(md.Versions))
	}
	if v := md.Version("1.0.5"); v == nil || v.Ref != "1.0.5" || len(v.ArtifactURLs) != 1 || !v.Published.IsZero() {
		t.Errorf("got %+v, want podspec facts and no publish time", v)
	}
	var se *classifiers.StatusError
	if _, err := c.Facts(context.Background(), classifiers.Request{Package: "BeaconKit", Version: "9.9"}, f); !errors.As(err, &se) {
		t.Errorf("got %v, want a wrapped StatusError", err)
	}
}

func TestREADMEAndTestdata(t *testing.T) {
	classifiertest.READMEAndTestdata(t, "cdn.cocoapods.org")
}

func FuzzShard(f *testing.F) {
	f.Add(classifiertest.ReadFile(f, "all_pods_versions_2_0_9.txt"))
	f.Add([]byte("A/1\r\nB/2/3"))
	c := New()
	f.Fuzz(func(t *testing.T, body []byte) {
		keep := func(pod, v string) bool { return len(pod+v)%3 != 0 }
		_, perr := ParseShard(body)
		out, ferr := c.FilterShard(body, keep)
		if (perr == nil) != (ferr == nil) {
			t.Fatalf("got parse error %v and filter error %v, want both or neither", perr, ferr)
		}
		for _, err := range []error{perr, ferr} {
			if err != nil && !errors.Is(err, classifiers.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		}
		if ferr != nil {
			return
		}
		lines, err := ParseShard(out)
		if err != nil {
			t.Fatalf("filtered shard does not parse: %v", err)
		}
		for _, l := range lines {
			for _, v := range l.Versions {
				if !keep(l.Pod, v) {
					t.Fatalf("got denied %s/%s", l.Pod, v)
				}
			}
		}
	})
}

func FuzzPodspec(f *testing.F) {
	f.Add(classifiertest.ReadFile(f, "BeaconKit-1.0.5.podspec.json"))
	f.Add(classifiertest.ReadFile(f, "SDWebImage-4.0.0.podspec.json"))
	c := New()
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := c.Parse(classifiers.Request{Variant: VariantPodspec}, body); err != nil && !errors.Is(err, classifiers.ErrMalformed) {
			t.Fatalf("got %v, want ErrMalformed", err)
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	classifiertest.BenchClassify(b, New(), "https://cdn.cocoapods.org/Specs/2/0/9/BeaconKit/1.0.5/BeaconKit.podspec.json", classifiers.KindMetadata)
}
