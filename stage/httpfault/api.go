package main

import (
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"sort"
	"sync"
)

const version = "0.1.0"

func newQuietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// registry holds the stages of one server process, by name.
type registry struct {
	mu     sync.Mutex
	stages map[string]*stage
}

func newRegistry() *registry { return &registry{stages: map[string]*stage{}} }

// api is the admin API, modelled on Toxiproxy's: JSON over HTTP on loopback.
//
//	GET    /version
//	GET    /stages                          {name: stage}
//	POST   /stages                          {name, listen, upstream}
//	GET    /stages/{name}
//	DELETE /stages/{name}
//	GET    /stages/{name}/faults            [fault]
//	POST   /stages/{name}/faults            {name?, type, attributes, match?}
//	DELETE /stages/{name}/faults/{fault}
//	POST   /reset                           every fault of every stage removed
func (g *registry) api() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, version)
	})
	mux.HandleFunc("GET /stages", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		out := map[string]stageJSON{}
		for name, s := range g.stages {
			out[name] = s.asJSON()
		}
		g.mu.Unlock()
		reply(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /stages", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name     string `json:"name"`
			Listen   string `json:"listen"`
			Upstream string `json:"upstream"`
		}
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			fail(w, http.StatusBadRequest, "stage: expected {name, listen, upstream}: "+err.Error())
			return
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		if _, exists := g.stages[in.Name]; exists {
			fail(w, http.StatusConflict, "stage "+in.Name+" exists already")
			return
		}
		s, err := newStage(in.Name, in.Listen, in.Upstream)
		if err != nil {
			failWith(w, err)
			return
		}
		g.stages[in.Name] = s
		reply(w, http.StatusCreated, s.asJSON())
	})
	mux.HandleFunc("GET /stages/{name}", g.withStage(func(w http.ResponseWriter, r *http.Request, s *stage) {
		reply(w, http.StatusOK, s.asJSON())
	}))
	mux.HandleFunc("DELETE /stages/{name}", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		s, ok := g.stages[r.PathValue("name")]
		delete(g.stages, r.PathValue("name"))
		g.mu.Unlock()
		if !ok {
			fail(w, http.StatusNotFound, "no stage "+r.PathValue("name"))
			return
		}
		s.close()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /stages/{name}/faults", g.withStage(func(w http.ResponseWriter, r *http.Request, s *stage) {
		reply(w, http.StatusOK, s.asJSON().Faults)
	}))
	mux.HandleFunc("POST /stages/{name}/faults", g.withStage(func(w http.ResponseWriter, r *http.Request, s *stage) {
		raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		f, err := parseFault(raw)
		if err == nil {
			err = s.addFault(f)
		}
		if err != nil {
			failWith(w, err)
			return
		}
		reply(w, http.StatusCreated, f.asJSON())
	}))
	mux.HandleFunc("DELETE /stages/{name}/faults/{fault}", g.withStage(func(w http.ResponseWriter, r *http.Request, s *stage) {
		if !s.removeFault(r.PathValue("fault")) {
			fail(w, http.StatusNotFound, "no fault "+r.PathValue("fault")+" on stage "+s.Name)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		names := make([]string, 0, len(g.stages))
		for name, s := range g.stages {
			s.clearFaults()
			names = append(names, name)
		}
		g.mu.Unlock()
		sort.Strings(names)
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func (g *registry) withStage(handle func(http.ResponseWriter, *http.Request, *stage)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		s, ok := g.stages[r.PathValue("name")]
		g.mu.Unlock()
		if !ok {
			fail(w, http.StatusNotFound, "no stage "+r.PathValue("name"))
			return
		}
		handle(w, r, s)
	}
}

func (g *registry) closeAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, s := range g.stages {
		s.close()
		delete(g.stages, name)
	}
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func fail(w http.ResponseWriter, status int, msg string) {
	reply(w, status, map[string]any{"error": msg, "status": status})
}

func failWith(w http.ResponseWriter, err error) {
	var bad badRequest
	var exists errExists
	switch {
	case errors.As(err, &bad):
		fail(w, http.StatusBadRequest, bad.msg)
	case errors.As(err, &exists):
		fail(w, http.StatusConflict, exists.msg)
	default:
		fail(w, http.StatusInternalServerError, err.Error())
	}
}
