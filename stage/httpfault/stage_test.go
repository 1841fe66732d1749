package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// upstream answers every request with its method and path, and /big with n bytes streamed
// in chunks.
func newUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/echo" {
			_, _ = w.Write(body)
			return
		}
		if r.URL.Path == "/big" {
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			for range 16 {
				_, _ = w.Write(chunk)
				w.(http.Flusher).Flush()
			}
			return
		}
		fmt.Fprintf(w, "%s %s", r.Method, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newTestStage(t *testing.T, faults ...string) (*stage, string) {
	t.Helper()
	up := newUpstream(t)
	s, err := newStage("test", "127.0.0.1:0", strings.TrimPrefix(up.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	for _, raw := range faults {
		f, err := parseFault([]byte(raw))
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if err := s.addFault(f); err != nil {
			t.Fatal(err)
		}
	}
	return s, "http://" + s.listener.Addr().String()
}

func get(t *testing.T, client *http.Client, url string) (int, string, error) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func TestPassesThroughWithoutFaults(t *testing.T) {
	_, base := newTestStage(t)
	status, body, err := get(t, http.DefaultClient, base+"/orders")
	if err != nil || status != 200 || body != "GET /orders" {
		t.Fatalf("got %d %q %v", status, body, err)
	}
	status, body, err = get(t, http.DefaultClient, base+"/big")
	if err != nil || status != 200 || len(body) != 16*64<<10 {
		t.Fatalf("big: got %d, %d bytes, %v", status, len(body), err)
	}
	payload := bytes.Repeat([]byte("0123456789"), 300_000)
	resp, err := http.Post(base+"/echo", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	echoed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(echoed, payload) {
		t.Fatalf("echo: %d bytes back of %d", len(echoed), len(payload))
	}
}

func TestFailFirstIsExact(t *testing.T) {
	_, base := newTestStage(t, `{"type": "http_fail_first", "attributes": {"count": 3, "status": 503}}`)
	var statuses []int
	for range 6 {
		status, _, err := get(t, http.DefaultClient, base+"/x")
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, status)
	}
	if fmt.Sprint(statuses) != "[503 503 503 200 200 200]" {
		t.Fatalf("got %v", statuses)
	}
}

func TestErrorRateIsPerRequestOnOneConnection(t *testing.T) {
	_, base := newTestStage(t, `{"type": "http_error", "attributes": {"status": 502, "rate": 0.3, "body": "no"}}`)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	const n = 2000
	errorsSeen := 0
	for range n {
		status, body, err := get(t, client, base+"/x")
		if err != nil {
			t.Fatal(err)
		}
		if status == 502 {
			if body != "no" {
				t.Fatalf("body %q", body)
			}
			errorsSeen++
		}
	}
	// Binomial(2000, 0.3): sd 20.5; 4 sd either side fails one run in 15,000.
	if math.Abs(float64(errorsSeen)-0.3*n) > 4*math.Sqrt(n*0.3*0.7) {
		t.Fatalf("%d errors of %d", errorsSeen, n)
	}
}

func TestMatchOnPathPrefixMethodAndHeader(t *testing.T) {
	_, base := newTestStage(t,
		`{"name": "slow-pay", "type": "http_error", "attributes": {"status": 500}, "match": {"path_prefix": "/pay", "method": "GET", "header": {"X-Tenant": "a"}}}`)
	cases := []struct {
		method, path, tenant string
		want                 int
	}{
		{"GET", "/pay/1", "a", 500},
		{"GET", "/pay/1", "b", 200},
		{"POST", "/pay/1", "a", 200},
		{"GET", "/orders", "a", 200},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, base+c.path, nil)
		req.Header.Set("X-Tenant", c.tenant)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%+v: got %d", c, resp.StatusCode)
		}
	}
}

func TestDelayOnRequestAndResponse(t *testing.T) {
	for _, where := range []string{"request", "response"} {
		_, base := newTestStage(t, `{"type": "http_delay", "attributes": {"latency_ms": 150, "where": "`+where+`"}}`)
		start := time.Now()
		status, _, err := get(t, http.DefaultClient, base+"/x")
		took := time.Since(start)
		if err != nil || status != 200 || took < 150*time.Millisecond || took > 1500*time.Millisecond {
			t.Fatalf("%s: %d %v after %v", where, status, err, took)
		}
	}
}

func TestAbortWithNoAnswer(t *testing.T) {
	_, base := newTestStage(t, `{"type": "http_abort", "attributes": {}}`)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	_, _, err := get(t, client, base+"/x")
	if err == nil {
		t.Fatal("an aborted request got an answer")
	}
}

func TestAbortAfterPartOfTheBody(t *testing.T) {
	_, base := newTestStage(t, `{"type": "http_abort", "attributes": {"after_bytes": 1000}}`)
	resp, err := http.Get(base + "/big")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(body) != 1000 {
		t.Fatalf("got %d bytes, err %v", len(body), err)
	}
}

func TestBadAttributesNameTheAttribute(t *testing.T) {
	cases := map[string]string{
		`{"type": "http_error", "attributes": {"status": 200}}`:                        "status",
		`{"type": "http_error", "attributes": {"rate": 0.5}}`:                          "status is required",
		`{"type": "http_error", "attributes": {"status": 500, "rate": 1.5}}`:           "rate",
		`{"type": "http_delay", "attributes": {"latency_ms": -1}}`:                     "latency_ms",
		`{"type": "http_delay", "attributes": {"latency_ms": 1, "where": "sideways"}}`: "where",
		`{"type": "http_fail_first", "attributes": {"count": 0.5}}`:                    "count",
		`{"type": "http_abort", "attributes": {"after": 3}}`:                           "after",
		`{"type": "http_abort", "attributes": {"after_bytes": "3"}}`:                   "after_bytes",
		`{"type": "http_teapot", "attributes": {}}`:                                    "type",
		`{"type": "http_abort", "match": {"path_prefix": "pay"}}`:                      "match.path_prefix",
		`{"type": "http_abort", "match": {"paths": "/pay"}}`:                           "match",
	}
	for raw, named := range cases {
		_, err := parseFault([]byte(raw))
		if err == nil || !strings.Contains(err.Error(), named) {
			t.Errorf("%s: got %v, want a refusal naming %q", raw, err, named)
		}
	}
}

func TestRefusesANonLoopbackListenAddress(t *testing.T) {
	for _, address := range []string{"0.0.0.0:0", "10.1.2.3:8000", ":8000", "example.com:80"} {
		if _, err := newStage("x", address, "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "listen") {
			t.Errorf("%s: got %v", address, err)
		}
	}
}

func TestAdminAPI(t *testing.T) {
	api := httptest.NewServer(newRegistry().api())
	defer api.Close()
	up := newUpstream(t)
	listener, _ := net.Listen("tcp", "127.0.0.1:0")
	listen := listener.Addr().String()
	listener.Close()
	call := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, api.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	stageBody := fmt.Sprintf(`{"name": "pay", "listen": %q, "upstream": %q}`, listen, strings.TrimPrefix(up.URL, "http://"))
	if status, out := call("POST", "/stages", stageBody); status != 201 {
		t.Fatalf("create: %d %v", status, out)
	}
	if status, _ := call("POST", "/stages", stageBody); status != 409 {
		t.Fatalf("create twice: %d", status)
	}
	if status, out := call("POST", "/stages", `{"name": "q", "listen": "0.0.0.0:1", "upstream": "127.0.0.1:1"}`); status != 400 || !strings.Contains(fmt.Sprint(out["error"]), "listen") {
		t.Fatalf("non-loopback: %d %v", status, out)
	}
	if status, out := call("POST", "/stages/pay/faults", `{"name": "e", "type": "http_error", "attributes": {"status": 99}}`); status != 400 || !strings.Contains(fmt.Sprint(out["error"]), "status") {
		t.Fatalf("bad fault: %d %v", status, out)
	}
	if status, out := call("POST", "/stages/pay/faults", `{"name": "e", "type": "http_error", "attributes": {"status": 418}}`); status != 201 {
		t.Fatalf("fault: %d %v", status, out)
	}
	if status, _, _ := get(t, http.DefaultClient, "http://"+listen+"/x"); status != 418 {
		t.Fatalf("through the stage: %d", status)
	}
	if status, out := call("GET", "/stages", ""); status != 200 || len(out["pay"].(map[string]any)["faults"].([]any)) != 1 {
		t.Fatalf("list: %d %v", status, out)
	}
	if status, _ := call("DELETE", "/stages/pay/faults/e", ""); status != 204 {
		t.Fatalf("remove: %d", status)
	}
	if status, _ := call("DELETE", "/stages/pay/faults/e", ""); status != 404 {
		t.Fatalf("remove twice: %d", status)
	}
	if status, _, _ := get(t, http.DefaultClient, "http://"+listen+"/x"); status != 200 {
		t.Fatalf("after removal: %d", status)
	}
	if status, _ := call("DELETE", "/stages/pay", ""); status != 204 {
		t.Fatalf("delete: %d", status)
	}
	if _, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		t.Fatal("a deleted stage still listens")
	}
}
