// Package s3 is a cache.Store on any S3-compatible service (AWS S3, MinIO,
// Ceph RGW, versitygw, ...) through minio-go with path-style addressing.
//
// An entry is one object named Prefix + cache.EscapeKey(key) + "#" (the
// '#', never produced by escaping, keeps leaf names distinct from directory
// names on servers that map objects to files); its SHA-256,
// status, store time and response headers travel as user metadata, so an
// object and its metadata are written by one atomic PUT and nothing partial
// is ever visible. Save spools the body to a local temp file first (to hash
// it and learn its size before the PUT); the Cache calls SaveFile with its
// own spool instead, which uploads directly.
package s3

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cafilprox/cafilprox/cache"
)

var now = time.Now

var (
	_ cache.Store      = (*Store)(nil)
	_ cache.InfoSetter = (*Store)(nil)
	_ cache.FileSaver  = (*Store)(nil)
)

// Config locates the bucket.
type Config struct {
	// Endpoint is host:port, or a URL whose scheme picks http or https.
	Endpoint string
	Bucket   string
	// Prefix is prepended to every object name ("cafilprox/"); a missing
	// trailing slash is added. Empty stores at the bucket root.
	Prefix string
	// Region; empty means us-east-1.
	Region string
	// AccessKey and SecretKey; both empty means anonymous access.
	AccessKey, SecretKey string
	// Insecure uses plain http when Endpoint has no scheme.
	Insecure bool
	// CAFile adds a PEM bundle to the system roots for a TLS endpoint.
	CAFile string
	// TempDir holds Save's local spool files; empty means os.TempDir().
	TempDir string
	// CreateBucket makes the bucket when it does not exist.
	CreateBucket bool
}

// Store is a cache.Store on one bucket.
type Store struct {
	c      *minio.Client
	bucket string
	prefix string
	tmp    string
}

// User metadata names (sent as X-Amz-Meta-Cafilprox-*).
const (
	metaSHA      = "Cafilprox-Sha256"
	metaStatus   = "Cafilprox-Status"
	metaStoredAt = "Cafilprox-Stored-At"
	metaHeader   = "Cafilprox-Header" // base64 JSON: values must be ASCII
)

// Open connects and checks (or creates) the bucket.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3: endpoint and bucket are required")
	}
	host, secure := cfg.Endpoint, !cfg.Insecure
	if scheme, rest, ok := strings.Cut(cfg.Endpoint, "://"); ok {
		host, secure = strings.TrimSuffix(rest, "/"), scheme == "https"
	}
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("s3: ca file: %w", err)
		}
		roots, err := x509.SystemCertPool()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("s3: ca file %s holds no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	tr.Proxy = nil // never loop through our own HTTPS_PROXY
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	var creds *credentials.Credentials
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")
	} else {
		creds = credentials.NewStatic("", "", "", credentials.SignatureAnonymous)
	}
	c, err := minio.New(host, &minio.Options{Creds: creds, Secure: secure, Transport: tr,
		Region: region, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	prefix := strings.TrimPrefix(cfg.Prefix, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	tmp := cfg.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	s := &Store{c: c, bucket: cfg.Bucket, prefix: prefix, tmp: tmp}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3: bucket %s: %w", cfg.Bucket, err)
	}
	if !ok {
		if !cfg.CreateBucket {
			return nil, fmt.Errorf("s3: bucket %s does not exist", cfg.Bucket)
		}
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: region}); err != nil {
			return nil, fmt.Errorf("s3: create bucket %s: %w", cfg.Bucket, err)
		}
	}
	return s, nil
}

func (s *Store) object(key string) (string, error) {
	if err := cache.ValidKey(key); err != nil {
		return "", fmt.Errorf("s3: %q: %w", key, err)
	}
	name := s.prefix + cache.EscapeKey(key) + "#"
	if len(name) > 1024 {
		return "", fmt.Errorf("s3: %q: object name too long: %w", key, cache.ErrInvalidKey)
	}
	return name, nil
}

func notFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.Code == minio.NoSuchKey || r.StatusCode == http.StatusNotFound
}

func metaGet(m map[string]string, name string) string {
	for k, v := range m {
		k = strings.TrimPrefix(strings.ToLower(k), "x-amz-meta-")
		if k == strings.ToLower(name) {
			return v
		}
	}
	return ""
}

// info turns an object's attributes into a cache.Info.
func (s *Store) info(key string, oi minio.ObjectInfo) cache.Info {
	i := cache.Info{Key: key, Size: oi.Size, Status: http.StatusOK, StoredAt: oi.LastModified, LastAccess: oi.LastModified}
	m := oi.UserMetadata
	i.SHA256 = metaGet(m, metaSHA)
	if v, err := strconv.Atoi(metaGet(m, metaStatus)); err == nil {
		i.Status = v
	}
	if t, err := time.Parse(time.RFC3339Nano, metaGet(m, metaStoredAt)); err == nil {
		i.StoredAt = t
	}
	if b, err := base64.StdEncoding.DecodeString(metaGet(m, metaHeader)); err == nil && len(b) > 0 {
		_ = json.Unmarshal(b, &i.Header)
	}
	return i
}

func userMeta(info cache.Info) (map[string]string, error) {
	m := map[string]string{metaSHA: info.SHA256, metaStatus: strconv.Itoa(info.Status),
		metaStoredAt: info.StoredAt.UTC().Format(time.RFC3339Nano)}
	if len(info.Header) > 0 {
		b, err := json.Marshal(info.Header)
		if err != nil {
			return nil, fmt.Errorf("s3: %w", err)
		}
		m[metaHeader] = base64.StdEncoding.EncodeToString(b)
	}
	return m, nil
}

// Get implements cache.Getter.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, cache.Info, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, cache.Info{}, err
	}
	obj, err := s.c.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err == nil {
		var oi minio.ObjectInfo
		if oi, err = obj.Stat(); err == nil {
			return obj, s.info(key, oi), nil
		}
		obj.Close()
	}
	if notFound(err) {
		return nil, cache.Info{}, fmt.Errorf("s3: %q: %w", key, cache.ErrNotFound)
	}
	return nil, cache.Info{}, fmt.Errorf("s3: get %q: %w", key, err)
}

// Stat implements cache.Stat.
func (s *Store) Stat(ctx context.Context, key string) (cache.Info, error) {
	name, err := s.object(key)
	if err != nil {
		return cache.Info{}, err
	}
	oi, err := s.c.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if notFound(err) {
		return cache.Info{}, fmt.Errorf("s3: %q: %w", key, cache.ErrNotFound)
	}
	if err != nil {
		return cache.Info{}, fmt.Errorf("s3: stat %q: %w", key, err)
	}
	return s.info(key, oi), nil
}

// Save implements cache.Saver: the body is spooled to a local temp file
// (hashed on the way) and then uploaded with its metadata in one PUT.
func (s *Store) Save(ctx context.Context, key string, r io.Reader, info cache.Info) (cache.Info, error) {
	if _, err := s.object(key); err != nil {
		return cache.Info{}, err
	}
	f, err := os.CreateTemp(s.tmp, "cafilprox-s3-*")
	if err != nil {
		return cache.Info{}, fmt.Errorf("s3: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx, r})
	if err != nil {
		return cache.Info{}, fmt.Errorf("s3: save %q: %w", key, err)
	}
	info.Size, info.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	return s.put(ctx, key, io.NewSectionReader(f, 0, n), info)
}

// SaveFile implements cache.FileSaver: path's Size and SHA256 are known.
func (s *Store) SaveFile(ctx context.Context, key, path string, info cache.Info) (cache.Info, error) {
	defer os.Remove(path)
	f, err := os.Open(path)
	if err != nil {
		return cache.Info{}, fmt.Errorf("s3: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return cache.Info{}, fmt.Errorf("s3: %w", err)
	}
	if fi.Size() != info.Size || len(info.SHA256) != 64 {
		return s.Save(ctx, key, f, info)
	}
	return s.put(ctx, key, f, info)
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, info cache.Info) (cache.Info, error) {
	name, err := s.object(key)
	if err != nil {
		return cache.Info{}, err
	}
	info.Key = key
	if info.Status == 0 {
		info.Status = http.StatusOK
	}
	if info.StoredAt.IsZero() {
		info.StoredAt = now()
	}
	um, err := userMeta(info)
	if err != nil {
		return cache.Info{}, err
	}
	_, err = s.c.PutObject(ctx, s.bucket, name, r, info.Size, minio.PutObjectOptions{
		UserMetadata: um, ContentType: "application/octet-stream", PartSize: 64 << 20})
	if err != nil {
		return cache.Info{}, fmt.Errorf("s3: put %q: %w", key, err)
	}
	info.LastAccess = now()
	return info, nil
}

// SetInfo implements cache.InfoSetter with a server-side copy onto itself
// that replaces the metadata.
func (s *Store) SetInfo(ctx context.Context, key string, info cache.Info) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	cur, err := s.Stat(ctx, key)
	if err != nil {
		return err
	}
	cur.Header, cur.StoredAt = info.Header, info.StoredAt
	if info.Status != 0 {
		cur.Status = info.Status
	}
	um, err := userMeta(cur)
	if err != nil {
		return err
	}
	_, err = s.c.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: s.bucket, Object: name, UserMetadata: um, ReplaceMetadata: true},
		minio.CopySrcOptions{Bucket: s.bucket, Object: name})
	if err != nil {
		return fmt.Errorf("s3: set info %q: %w", key, err)
	}
	return nil
}

// Delete implements cache.Deleter.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil && !notFound(err) {
		return fmt.Errorf("s3: delete %q: %w", key, err)
	}
	return nil
}

// List implements cache.Lister. SHA256 and Header are filled only when the
// server returns metadata in listings (MinIO); Size and Key always are.
func (s *Store) List(ctx context.Context, prefix string, fn func(cache.Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn fails
	p := s.prefix + cache.EscapeKey(prefix)
	for oi := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: p, Recursive: true, WithMetadata: true}) {
		if oi.Err != nil {
			return fmt.Errorf("s3: list %q: %w", prefix, oi.Err)
		}
		name, ok := strings.CutSuffix(strings.TrimPrefix(oi.Key, s.prefix), "#")
		if !ok {
			continue // not ours (or a directory marker)
		}
		key, err := cache.UnescapeKey(name)
		if err != nil || !strings.HasPrefix(key, prefix) || cache.ValidKey(key) != nil {
			continue // not ours
		}
		if err := fn(s.info(key, oi)); err != nil {
			return err
		}
	}
	return nil
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
