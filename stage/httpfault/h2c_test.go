package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// HTTP/2 cleartext (prior knowledge, as gRPC without TLS speaks it) passes through as HTTP/2,
// trailers included, and a fault answers it too.
func TestH2CPassesThroughWithTrailers(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	upstream := &http.Server{Protocols: protocols, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		_, _ = io.WriteString(w, r.Proto+" "+r.URL.Path)
		w.Header().Set("Grpc-Status", "0")
	})}
	go func() { _ = upstream.Serve(listener) }()
	t.Cleanup(func() { _ = upstream.Close() })

	s, err := newStage("h2c", "127.0.0.1:0", listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	client := &http.Client{Transport: &http.Transport{Protocols: protocols}}
	base := "http://" + s.listener.Addr().String()

	resp, err := client.Get(base + "/svc.Orders/Get")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "HTTP/2.0 /svc.Orders/Get" || resp.Trailer.Get("Grpc-Status") != "0" {
		t.Fatalf("got %s %q, trailers %v", resp.Proto, body, resp.Trailer)
	}

	f, _ := parseFault([]byte(`{"type": "http_error", "attributes": {"status": 503}, "match": {"path_prefix": "/svc.Orders/"}}`))
	_ = s.addFault(f)
	resp, err = client.Get(base + "/svc.Orders/Get")
	if err != nil || resp.StatusCode != 503 || resp.ProtoMajor != 2 {
		t.Fatalf("fault over h2c: %v %v", resp, err)
	}
	resp.Body.Close()

	_ = s.removeFault(f.Name)
	f, _ = parseFault([]byte(`{"type": "http_abort"}`))
	_ = s.addFault(f)
	if _, err := client.Get(base + "/x"); err == nil || !strings.Contains(err.Error(), "stream") {
		t.Fatalf("abort over h2c: %v", err)
	}
}
