// httpload: an open-model HTTP load generator for bench/http_stage_bench.py, and the trivial
// upstream it loads.
//
//	httpload -serve 127.0.0.1:9000
//	httpload -url http://127.0.0.1:9000/x -rate 1000 -duration 10s -out latencies.txt
//
// Requests start on a fixed schedule (one every 1/rate s), each on its own goroutine, over a
// pool of keep-alive connections; whether an answer is late never delays the next start
// (no coordinated omission). Each request's latency, from its scheduled start to the end of
// its body, is written as "<microseconds> <status>" per line (status 0: no answer).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

func main() {
	serve := flag.String("serve", "", "answer 200 \"ok\" to every request on this address, and nothing else")
	url := flag.String("url", "", "the URL to load")
	rate := flag.Float64("rate", 1000, "requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to load")
	out := flag.String("out", "-", "where the latencies go")
	flag.Parse()
	if *serve != "" {
		body := []byte("ok")
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Length", "2")
			_, _ = w.Write(body)
		})
		if err := http.ListenAndServe(*serve, handler); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		return
	}
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 256,
			DisableCompression:  true,
		},
	}
	// Warm the pool so the first second does not measure connection set-up.
	for range 50 {
		if resp, err := client.Get(*url); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	n := int(*rate * duration.Seconds())
	interval := time.Duration(float64(time.Second) / *rate)
	latencies := make([]int64, n)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		scheduled := start.Add(time.Duration(i) * interval)
		if wait := time.Until(scheduled); wait > 0 {
			time.Sleep(wait)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(*url)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil {
					statuses[i] = resp.StatusCode
				}
			}
			latencies[i] = time.Since(scheduled).Microseconds()
		}()
	}
	wg.Wait()
	w := os.Stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		defer f.Close()
		w = f
	}
	buffered := bufio.NewWriter(w)
	defer buffered.Flush()
	for i := range n {
		fmt.Fprintf(buffered, "%d %d\n", latencies[i], statuses[i])
	}
}
