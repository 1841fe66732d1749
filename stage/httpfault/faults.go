package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// The fault kinds and, for each, its attributes: name -> required?
var faultKinds = map[string]map[string]bool{
	"http_error":      {"status": true, "rate": false, "body": false},
	"http_delay":      {"latency_ms": true, "jitter_ms": false, "rate": false, "where": false},
	"http_fail_first": {"count": true, "status": false},
	"http_abort":      {"rate": false, "after_bytes": false},
}

// match narrows a fault to some requests; an empty match takes every request.
type match struct {
	Method     string            `json:"method,omitempty"`
	PathPrefix string            `json:"path_prefix,omitempty"`
	Header     map[string]string `json:"header,omitempty"`
}

func (m *match) takes(r *http.Request) bool {
	if m.Method != "" && !strings.EqualFold(m.Method, r.Method) {
		return false
	}
	if m.PathPrefix != "" && !strings.HasPrefix(r.URL.Path, m.PathPrefix) {
		return false
	}
	for name, value := range m.Header {
		if r.Header.Get(name) != value {
			return false
		}
	}
	return true
}

// fault is one fault in force on a stage; its fields are fixed once it is added, only the
// counters move (atomically), so requests read it without a lock.
type fault struct {
	Name       string
	Kind       string
	Attributes map[string]any
	Match      match

	status     int
	rate       float64
	body       []byte
	latency    time.Duration
	jitter     time.Duration
	onResponse bool
	count      int64
	afterBytes int64 // -1: close with no answer

	seen    atomic.Int64 // matching requests (http_fail_first counts with it)
	applied atomic.Int64 // requests it was applied to
}

type faultJSON struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Attributes map[string]any `json:"attributes"`
	Match      *match         `json:"match,omitempty"`
	Applied    int64          `json:"applied"`
}

func (f *fault) asJSON() faultJSON {
	out := faultJSON{Name: f.Name, Type: f.Kind, Attributes: f.Attributes, Applied: f.applied.Load()}
	if f.Match.Method != "" || f.Match.PathPrefix != "" || len(f.Match.Header) > 0 {
		m := f.Match
		out.Match = &m
	}
	return out
}

// badRequest is a refusal whose message names what was wrong; the API answers it with 400.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func refuse(format string, args ...any) error { return badRequest{fmt.Sprintf(format, args...)} }

// parseFault checks a fault as the API received it; every refusal names the attribute.
func parseFault(raw []byte) (*fault, error) {
	var in struct {
		Name       string          `json:"name"`
		Type       string          `json:"type"`
		Attributes map[string]any  `json:"attributes"`
		Match      json.RawMessage `json:"match"`
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, refuse("fault: expected {name, type, attributes, match?}: %v", err)
	}
	schema, ok := faultKinds[in.Type]
	if !ok {
		kinds := make([]string, 0, len(faultKinds))
		for k := range faultKinds {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		return nil, refuse("type: unknown fault type %q; known types: %s", in.Type, strings.Join(kinds, ", "))
	}
	if in.Name == "" {
		in.Name = in.Type
	}
	if in.Attributes == nil {
		in.Attributes = map[string]any{}
	}
	for key := range in.Attributes {
		if _, known := schema[key]; !known {
			names := make([]string, 0, len(schema))
			for k := range schema {
				names = append(names, k)
			}
			sort.Strings(names)
			return nil, refuse("%s: unknown attribute %s; %s takes %s", in.Type, key, in.Type, strings.Join(names, ", "))
		}
	}
	for key, required := range schema {
		if _, present := in.Attributes[key]; required && !present {
			return nil, refuse("%s: attribute %s is required", in.Type, key)
		}
	}
	f := &fault{Name: in.Name, Kind: in.Type, Attributes: in.Attributes, rate: 1, afterBytes: -1, status: 503}
	if len(in.Match) > 0 && string(in.Match) != "null" {
		mdec := json.NewDecoder(strings.NewReader(string(in.Match)))
		mdec.DisallowUnknownFields()
		if err := mdec.Decode(&f.Match); err != nil {
			return nil, refuse("match: expected {method?, path_prefix?, header?: {name: value}}: %v", err)
		}
		if f.Match.PathPrefix != "" && !strings.HasPrefix(f.Match.PathPrefix, "/") {
			return nil, refuse("match.path_prefix: must start with /, got %q", f.Match.PathPrefix)
		}
	}
	a := attributes{kind: in.Type, values: in.Attributes}
	var err error
	if f.rate, err = a.fraction("rate", 1); err != nil {
		return nil, err
	}
	switch in.Type {
	case "http_error", "http_fail_first":
		if f.status, err = a.status("status", 503); err != nil {
			return nil, err
		}
		if in.Type == "http_fail_first" {
			if f.count, err = a.whole("count", 0, 1); err != nil {
				return nil, err
			}
		}
		body, present := in.Attributes["body"]
		if present {
			text, isText := body.(string)
			if !isText {
				return nil, refuse("%s: attribute body must be a string, got %v", in.Type, body)
			}
			f.body = []byte(text)
		}
	case "http_delay":
		ms, err := a.number("latency_ms", 0)
		if err != nil {
			return nil, err
		}
		jitter, err := a.number("jitter_ms", 0)
		if err != nil {
			return nil, err
		}
		f.latency = time.Duration(ms * float64(time.Millisecond))
		f.jitter = time.Duration(jitter * float64(time.Millisecond))
		where, present := in.Attributes["where"]
		switch where {
		case "request":
		case "response":
			f.onResponse = true
		default:
			if present {
				return nil, refuse("http_delay: attribute where must be request or response, got %v", where)
			}
		}
	case "http_abort":
		if _, present := in.Attributes["after_bytes"]; present {
			if f.afterBytes, err = a.whole("after_bytes", 0, 0); err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

// attributes reads one fault's attributes, each refusal naming the attribute.
type attributes struct {
	kind   string
	values map[string]any
}

func (a attributes) number(key string, fallback float64) (float64, error) {
	raw, present := a.values[key]
	if !present {
		return fallback, nil
	}
	value, ok := raw.(float64)
	if !ok || math.IsNaN(value) || math.IsInf(value, 0) {
		return 0, refuse("%s: attribute %s must be a number, got %v", a.kind, key, raw)
	}
	if value < 0 {
		return 0, refuse("%s: attribute %s must not be negative, got %v", a.kind, key, raw)
	}
	return value, nil
}

func (a attributes) fraction(key string, fallback float64) (float64, error) {
	value, err := a.number(key, fallback)
	if err == nil && value > 1 {
		return 0, refuse("%s: attribute %s is a share of requests from 0 to 1, got %v", a.kind, key, value)
	}
	return value, err
}

func (a attributes) whole(key string, fallback float64, least int64) (int64, error) {
	value, err := a.number(key, fallback)
	if err != nil {
		return 0, err
	}
	if value != math.Trunc(value) || int64(value) < least {
		return 0, refuse("%s: attribute %s must be a whole number from %d, got %v", a.kind, key, least, value)
	}
	return int64(value), nil
}

func (a attributes) status(key string, fallback float64) (int, error) {
	value, err := a.whole(key, fallback, 0)
	if err != nil {
		return 0, err
	}
	if value < 400 || value > 599 {
		return 0, refuse("%s: attribute %s must be an HTTP error status from 400 to 599, got %d", a.kind, key, value)
	}
	return int(value), nil
}

// decision is what the faults in force do to one request.
type decision struct {
	requestDelay  time.Duration
	responseDelay time.Duration
	answer        *fault // http_error or http_fail_first: answered here, never sent upstream
	abort         *fault // http_abort
}

// rolled is true with probability rate; a rate of 1 rolls no dice.
func rolled(rate float64) bool { return rate >= 1 || (rate > 0 && rand.Float64() < rate) }

// decide rolls each matching fault once for this request, in the order they were added; the
// first fault that answers or aborts ends the list (the ones after it never see the request).
func decide(faults []*fault, r *http.Request) decision {
	var d decision
	for _, f := range faults {
		if !f.Match.takes(r) {
			continue
		}
		switch f.Kind {
		case "http_fail_first", "http_error", "http_abort":
			hit := f.Kind == "http_fail_first" && f.seen.Add(1) <= f.count ||
				f.Kind != "http_fail_first" && rolled(f.rate)
			if !hit {
				continue
			}
			f.applied.Add(1)
			if f.Kind == "http_abort" {
				d.abort = f
			} else {
				d.answer = f
			}
			return d
		case "http_delay":
			if rolled(f.rate) {
				f.applied.Add(1)
				wait := f.latency
				if f.jitter > 0 {
					wait += time.Duration((rand.Float64()*2 - 1) * float64(f.jitter))
					wait = max(wait, 0)
				}
				if f.onResponse {
					d.responseDelay += wait
				} else {
					d.requestDelay += wait
				}
			}
		}
	}
	return d
}
