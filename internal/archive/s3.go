package archive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config is an S3-compatible bucket to archive into.
type S3Config struct {
	// URL is s3://bucket/prefix.
	URL string
	// Endpoint is the server's base URL, http:// or https://
	// (default https://s3.amazonaws.com).
	Endpoint string
	// Region is the bucket's region (default us-east-1).
	Region string
	// AccessKey, SecretKey and SessionToken sign the requests; empty
	// means the AWS_* environment variables, then ~/.aws/credentials.
	AccessKey, SecretKey, SessionToken string
	// Spool is the local folder files are written to before upload.
	Spool string
	// Transport, when not nil, carries the requests (tests).
	Transport http.RoundTripper
	// MaxRetries bounds the client's own retries of a request (default
	// 3); past them the archiver's backoff takes over.
	MaxRetries int
}

// S3FromEnv fills in what AWS tools read from the environment:
// AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (the server), AWS_REGION or
// AWS_DEFAULT_REGION; the keys come from AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN when the store is opened.
func S3FromEnv(rawURL, spool string) S3Config {
	return S3Config{
		URL:      rawURL,
		Endpoint: firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
		Region:   firstEnv("AWS_REGION", "AWS_DEFAULT_REGION"),
		Spool:    spool,
	}
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// S3Store keeps the archive in a bucket. An object appears only once its
// upload (a single PUT, or a multipart upload for large files) completes.
type S3Store struct {
	cl             *minio.Client
	bucket, prefix string
	spool          string
}

// ParseS3URL splits s3://bucket/prefix.
func ParseS3URL(raw string) (bucket, prefix string, err error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", "", fmt.Errorf("--archive %q: use s3://bucket/prefix (or a local folder with --archive-dir)", raw)
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return u.Host, prefix, nil
}

// NewS3 opens the bucket of cfg.URL. It does not contact the server:
// the archiver's first listing does, and retries while it fails.
func NewS3(cfg S3Config) (*S3Store, error) {
	bucket, prefix, err := ParseS3URL(cfg.URL)
	if err != nil {
		return nil, err
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "https://s3.amazonaws.com"
	}
	eu, err := url.Parse(endpoint)
	if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
		return nil, fmt.Errorf("S3 endpoint %q (AWS_ENDPOINT_URL): use http://host:port or https://host", endpoint)
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}})
	if cfg.AccessKey != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	}
	opts := &minio.Options{Creds: creds, Secure: eu.Scheme == "https", Region: cfg.Region, Transport: cfg.Transport, MaxRetries: cmp.Or(cfg.MaxRetries, 3)}
	if cfg.Endpoint != "" {
		opts.BucketLookup = minio.BucketLookupPath // S3-compatible servers: bucket in the path
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	cl, err := minio.New(eu.Host, opts)
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", endpoint, err)
	}
	if err := os.MkdirAll(cfg.Spool, 0o755); err != nil {
		return nil, fmt.Errorf("create archive spool %s: %w", cfg.Spool, err)
	}
	return &S3Store{cl: cl, bucket: bucket, prefix: prefix, spool: cfg.Spool}, nil
}

func (s *S3Store) String() string   { return "s3://" + s.bucket + "/" + s.prefix }
func (s *S3Store) SpoolDir() string { return s.spool }

// Publish uploads tmp as name and removes tmp once the object exists.
func (s *S3Store) Publish(ctx context.Context, tmp, name string) error {
	_, err := s.cl.FPutObject(ctx, s.bucket, s.prefix+name, tmp, minio.PutObjectOptions{ContentType: "application/vnd.apache.parquet"})
	if err != nil {
		return fmt.Errorf("upload %s to %s: %w", filepath.Base(name), s, err)
	}
	return os.Remove(tmp)
}

// List lists the objects under prefix.
func (s *S3Store) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	for obj := range s.cl.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list %s: %w", s, obj.Err)
		}
		out = append(out, strings.TrimPrefix(obj.Key, s.prefix))
	}
	return out, nil
}

type s3File struct {
	*minio.Object
	size int64
}

func (f s3File) Size() int64 { return f.size }

// Open opens an object for reading (ranged GETs).
func (s *S3Store) Open(ctx context.Context, name string) (File, error) {
	obj, err := s.cl.GetObject(ctx, s.bucket, s.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", name, s, err)
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, fmt.Errorf("open %s in %s: %w", name, s, err)
	}
	return s3File{obj, st.Size}, nil
}

// errNoBucket says how to fix a missing bucket.
var errNoBucket = errors.New("the bucket does not exist: create it, or fix the name in --archive")

// checkBucket reports a missing bucket clearly.
func (s *S3Store) checkBucket(ctx context.Context) error {
	ok, err := s.cl.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("reach %s: %w", s, err)
	}
	if !ok {
		return fmt.Errorf("%s: %w", s, errNoBucket)
	}
	return nil
}
