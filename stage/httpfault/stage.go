package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// stage is one HTTP hop: it listens on loopback, forwards every request to its upstream
// (streaming both bodies, keep-alive on both sides) and applies the faults in force.
type stage struct {
	Name     string
	Listen   string
	Upstream string

	faults   atomic.Pointer[[]*fault] // replaced whole on a change; read lock-free per request
	edit     sync.Mutex               // serialises changes to faults
	server   *http.Server
	listener net.Listener
	proxy    *httputil.ReverseProxy
	proxyH2  *httputil.ReverseProxy
}

type stageJSON struct {
	Name     string      `json:"name"`
	Listen   string      `json:"listen"`
	Upstream string      `json:"upstream"`
	Faults   []faultJSON `json:"faults"`
}

func (s *stage) asJSON() stageJSON {
	out := stageJSON{Name: s.Name, Listen: s.Listen, Upstream: s.Upstream, Faults: []faultJSON{}}
	for _, f := range *s.faults.Load() {
		out.Faults = append(out.Faults, f.asJSON())
	}
	return out
}

// loopbackOnly refuses an address that is not host:port on a loopback address.
func loopbackOnly(field, address string) error {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return refuse("%s: expected host:port, got %q", field, address)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return refuse("%s: expected a port number, got %q", field, port)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return refuse("%s: the stage listens on loopback only (127.0.0.1, ::1), got %q", field, host)
	}
	return nil
}

func newStage(name, listen, upstream string) (*stage, error) {
	if name == "" {
		return nil, refuse("name: required")
	}
	if err := loopbackOnly("listen", listen); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(upstream); err != nil {
		return nil, refuse("upstream: expected host:port, got %q", upstream)
	}
	target := &url.URL{Scheme: "http", Host: upstream}
	s := &stage{Name: name, Listen: listen, Upstream: upstream}
	s.faults.Store(&[]*fault{})
	s.proxy = newForwarder(target, newTransport(false))
	s.proxyH2 = newForwarder(target, newTransport(true))
	listener, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.listener = listener
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // h2c with prior knowledge (gRPC without TLS)
	s.server = &http.Server{
		Handler:           s,
		Protocols:         protocols,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          quietLog,
	}
	go func() { _ = s.server.Serve(listener) }()
	return s, nil
}

// newTransport keeps connections to the upstream alive and pooled, as many as the clients
// keep to the stage, so a keep-alive client costs one upstream connection, not one a request.
func newTransport(h2c bool) *http.Transport {
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // bodies pass as they are
	}
	if h2c {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

type delayKey struct{}

// bufferPool lends ReverseProxy the buffers it copies bodies through.
type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.pool.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.pool.Put(&buf) }

var copyBuffers = &bufferPool{}

func newForwarder(target *url.URL, transport *http.Transport) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Director: func(r *http.Request) {
			r.URL.Scheme = target.Scheme
			r.URL.Host = target.Host
			// The hop is transparent: no X-Forwarded-For added (a nil value tells
			// ReverseProxy so), the Host header is the client's.
			if _, ok := r.Header["X-Forwarded-For"]; !ok {
				r.Header["X-Forwarded-For"] = nil
			}
		},
		Transport:  transport,
		BufferPool: copyBuffers, // else ReverseProxy allocates 32 KB for each body it copies
		// FlushInterval 0: a body of unknown length (chunked, event streams) is flushed on
		// every write anyway (ReverseProxy's own rule); a body of known length goes out in
		// full buffers, with no flush per write.
		ErrorLog: quietLog,
		ModifyResponse: func(resp *http.Response) error {
			if wait, ok := resp.Request.Context().Value(delayKey{}).(time.Duration); ok {
				return sleep(resp.Request.Context(), wait)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the client went away
			}
			http.Error(w, "doorbuster-httpfault: upstream "+target.Host+": "+err.Error(), http.StatusBadGateway)
		},
	}
}

func sleep(ctx context.Context, wait time.Duration) error {
	if wait <= 0 {
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *stage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	faults := *s.faults.Load()
	proxy := s.proxy
	if r.ProtoMajor == 2 {
		proxy = s.proxyH2
	}
	if len(faults) == 0 {
		proxy.ServeHTTP(w, r)
		return
	}
	d := decide(faults, r)
	if err := sleep(r.Context(), d.requestDelay); err != nil {
		return
	}
	switch {
	case d.answer != nil:
		// The request body is not read: the server drains what it can and keeps the connection.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Doorbuster-Fault", d.answer.Name)
		w.Header().Set("Content-Length", strconv.Itoa(len(d.answer.body)))
		w.WriteHeader(d.answer.status)
		_, _ = w.Write(d.answer.body)
		return
	case d.abort != nil && d.abort.afterBytes < 0:
		// No answer at all: the server closes the connection (HTTP/1) or resets the stream
		// (HTTP/2) without writing anything.
		panic(http.ErrAbortHandler)
	case d.abort != nil:
		w = &truncatingWriter{ResponseWriter: w, left: d.abort.afterBytes}
	}
	if d.responseDelay > 0 {
		r = r.WithContext(context.WithValue(r.Context(), delayKey{}, d.responseDelay))
	}
	proxy.ServeHTTP(w, r)
}

var errTruncated = errors.New("http_abort: body cut after after_bytes")

// truncatingWriter passes the first “left“ bytes of the body, flushes them, then fails the
// write: ReverseProxy then aborts the handler and the server closes the connection.
type truncatingWriter struct {
	http.ResponseWriter
	left int64
}

func (t *truncatingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= t.left {
		t.left -= int64(len(p))
		return t.ResponseWriter.Write(p)
	}
	n, _ := t.ResponseWriter.Write(p[:t.left])
	t.left = 0
	_ = http.NewResponseController(t.ResponseWriter).Flush()
	return n, errTruncated
}

func (t *truncatingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func (s *stage) addFault(f *fault) error {
	s.edit.Lock()
	defer s.edit.Unlock()
	current := *s.faults.Load()
	for _, existing := range current {
		if existing.Name == f.Name {
			return errExists{fmt.Sprintf("fault %s exists on stage %s already", f.Name, s.Name)}
		}
	}
	next := append(slices.Clone(current), f)
	s.faults.Store(&next)
	return nil
}

func (s *stage) removeFault(name string) bool {
	s.edit.Lock()
	defer s.edit.Unlock()
	current := *s.faults.Load()
	next := slices.DeleteFunc(slices.Clone(current), func(f *fault) bool { return f.Name == name })
	s.faults.Store(&next)
	return len(next) != len(current)
}

func (s *stage) clearFaults() {
	s.edit.Lock()
	defer s.edit.Unlock()
	s.faults.Store(&[]*fault{})
}

func (s *stage) close() {
	_ = s.server.Close()
	s.proxy.Transport.(*http.Transport).CloseIdleConnections()
	s.proxyH2.Transport.(*http.Transport).CloseIdleConnections()
}

type errExists struct{ msg string }

func (e errExists) Error() string { return e.msg }

var quietLog = newQuietLog()
