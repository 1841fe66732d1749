// A trivial order endpoint for the load generator benchmarks: it answers POST /orders at
// once (so the generator, not the server, is what is measured), except during one optional
// stall, when every request waits until the stall ends. It records, on its own clock, when
// each request was received and answered; with an arrival schedule that the benchmark computes
// itself, that gives the true latency of an open-model schedule independently of any load
// generator.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type record struct {
	Intended *float64 `json:"intended,omitempty"`
	Received float64  `json:"received"`
	Answered float64  `json:"answered"`
}

func now() float64 { return float64(time.Now().UnixNano()) / 1e9 }

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	stallAt := flag.Float64("stall-at", -1, "seconds after the first request when the stall starts (<0: none)")
	stallFor := flag.Float64("stall-for", 1.4, "seconds the stall lasts")
	flag.Parse()

	var first atomic.Value // float64
	var mu sync.Mutex
	var records []record
	var count atomic.Int64
	body := []byte(`{"order_id":"1","status":"confirmed"}`)

	http.HandleFunc("/orders", func(w http.ResponseWriter, r *http.Request) {
		received := now()
		io.Copy(io.Discard, r.Body)
		first.CompareAndSwap(nil, received)
		if *stallAt >= 0 {
			start := first.Load().(float64) + *stallAt
			end := start + *stallFor
			if received >= start && received < end {
				time.Sleep(time.Duration((end - received) * 1e9))
			}
		}
		count.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
		// Every request is recorded on this server's clock; the generator's own header is
		// kept beside, for comparison only.
		var intended *float64
		if v := r.Header.Get("X-Intended-Start"); v != "" {
			if parsed, err := strconv.ParseFloat(v, 64); err == nil {
				intended = &parsed
			}
		}
		mu.Lock()
		records = append(records, record{intended, received, now()})
		mu.Unlock()
	})
	http.HandleFunc("/records", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"count": count.Load(), "records": records})
	})
	http.HandleFunc("/reset", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		records = nil
		mu.Unlock()
		count.Store(0)
		first = atomic.Value{}
		fmt.Fprintln(w, "ok")
	})
	log.Printf("listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
