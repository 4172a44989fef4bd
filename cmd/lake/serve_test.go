package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to write from the command and read from the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listenLine = regexp.MustCompile(`listening on (https?)://(\S+)`)

// serveInProcess runs `lake serve ARGS --addr 127.0.0.1:0` until stop is called; it returns the
// base URL.
func serveInProcess(t *testing.T, args ...string) (base string, stop func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdout: &syncBuffer{}, stderr: &errb}, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...))
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := listenLine.FindStringSubmatch(errb.String()); m != nil {
			base = m[1] + "://" + m[2]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, errb.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", errb.String())
		}
	}
	return base, func() (int, string) {
		cancel()
		select {
		case code := <-done:
			return code, errb.String()
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop")
			return 0, ""
		}
	}
}

func TestServeUsage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	mustLake(t, "create", dir, "--schema", "interactions")
	badConfig := filepath.Join(t.TempDir(), "lake.yaml")
	os.WriteFile(badConfig, []byte("table: "+dir+"\nevry: 6h\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"serve"}, 2, "--table is required"},
		{[]string{"serve", "--table", dir, "--tls-cert", "c.pem"}, 2, "--tls-key"},
		{[]string{"serve", "--table", dir, "--config", "x.yaml"}, 2, "no such file"},
		{[]string{"serve", "--config", badConfig}, 2, `line 2: unknown field "evry"`},
		{[]string{"serve", "--table", dir, "--batch-rows", "0"}, 2, "--batch-rows"},
		{[]string{"serve", "--table", dir, "--queue", "kafka://x"}, 2, "unknown scheme"},
		{[]string{"serve", "--table", filepath.Join(t.TempDir(), "nope")}, 1, "lake create"},
		{[]string{"commit-stream", "--table", dir}, 2, "--queue is required"},
		{[]string{"commit-stream", "--table", dir, "--queue", "mem://x"}, 2, "shared queue"},
		{[]string{"serve", "extra", "--table", dir}, 2, "too many arguments"},
	} {
		_, errOut, code := lake(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.msg) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("lake %v: exit %d, stderr %q; want exit %d and one line with %q", c.args, code, errOut, c.code, c.msg)
		}
	}
	// A table without the interaction columns is refused.
	other := filepath.Join(t.TempDir(), "other")
	schema := filepath.Join(t.TempDir(), "s.json")
	os.WriteFile(schema, []byte(`{"type":"struct","fields":[{"name":"id","type":"long","nullable":true,"metadata":{}}]}`), 0o644)
	mustLake(t, "create", other, "--schema-json", schema)
	if _, errOut, code := lake(t, "serve", "--table", other); code != 1 || !strings.Contains(errOut, "interaction schema") {
		t.Errorf("serve on a non-interaction table: %d %q", code, errOut)
	}
}

// lake serve on the embedded queue: events sent over HTTP are committed, and the events still in
// the queue when it stops are drained into the table first.
func TestServeMem(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	mustLake(t, "create", dir, "--schema", "interactions")
	base, stop := serveInProcess(t, "--table", dir, "--queue", "mem://serve-test", "--write-token", "tok",
		"--batch-interval", "1h", "--batch-rows", "100000", "--demo-site")
	get := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("/p.gif?u=alice&i=sku-1&t=view"); c != 200 {
		t.Fatalf("pixel: %d", c)
	}
	post := func(tok string) int {
		req, _ := http.NewRequest("POST", base+"/v1/events", strings.NewReader(
			`{"event_id":"e-1","user_id":"bob","item_id":"sku-2","interaction_type":"purchase","value":9.5,"timestamp":"2024-05-01T10:00:00Z"}`+"\n"+
				`{"user_id":"bob","item_id":"sku-3","interaction_type":"view","timestamp":1714557600000}`))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post(""); c != 401 {
		t.Errorf("without the token: %d", c)
	}
	if c := post("tok"); c != 202 {
		t.Fatalf("with the token: %d", c)
	}
	for _, p := range []string{"/healthz", "/metrics", "/pixel.js", "/demo/"} {
		if c := get(p); c != 200 {
			t.Errorf("%s: %d", p, c)
		}
	}
	code, errOut := stop()
	if code != 0 || !strings.Contains(errOut, "committed 3 events in 1 batches") {
		t.Fatalf("serve: exit %d: %s", code, errOut)
	}
	out := mustLake(t, "cat", dir, "--format", "jsonl", "--columns", "user_id,item_id,interaction_type,source")
	for _, want := range []string{`{"user_id":"alice","item_id":"sku-1","interaction_type":"view","source":"collector"}`,
		`{"user_id":"bob","item_id":"sku-2","interaction_type":"purchase","source":"collector"}`,
		`{"user_id":"bob","item_id":"sku-3","interaction_type":"view","source":"collector"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %s:\n%s", want, out)
		}
	}
	out = mustLake(t, "history", dir, "--format", "jsonl", "--limit", "1")
	if !strings.Contains(out, `"committer":"lake-serve"`) || !strings.Contains(out, `"operation":"STREAMING UPDATE"`) {
		t.Errorf("history: %s", out)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and returns the file names.
func writeCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lake test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	mustLake(t, "create", dir, "--schema", "interactions")
	cert, key, pool := writeCert(t)
	base, stop := serveInProcess(t, "--table", dir, "--queue", "mem://serve-tls", "--tls-cert", cert, "--tls-key", key)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("base %s", base)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(base + "/p.gif?u=a&i=b&t=view")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("pixel over TLS: %d", resp.StatusCode)
	}
	if _, err := http.Get("http://" + strings.TrimPrefix(base, "https://") + "/healthz"); err == nil {
		// Plain HTTP to a TLS port gets a 400 from net/http, never an event.
		t.Log("plain HTTP answered (with an error status)")
	}
	if code, errOut := stop(); code != 0 || !strings.Contains(errOut, "committed 1 events") {
		t.Fatalf("serve: %d %s", code, errOut)
	}
}
