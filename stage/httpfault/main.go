// doorbuster-httpfault: an HTTP fault stage. Each stage is one HTTP hop on loopback that
// forwards to its upstream and, per request, answers an error, delays, fails the first N
// requests or aborts, as the faults in force say. Stages and faults are made through a JSON
// admin API on loopback, modelled on Toxiproxy's. Standard library only.
//
//	doorbuster-httpfault -api 127.0.0.1:8575
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	apiAddress := flag.String("api", "127.0.0.1:8575", "where the admin API listens (loopback only)")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}
	if err := loopbackOnly("-api", *apiAddress); err != nil {
		fmt.Fprintln(os.Stderr, "doorbuster-httpfault:", err)
		os.Exit(2)
	}
	listener, err := net.Listen("tcp", *apiAddress)
	if err != nil {
		fmt.Fprintln(os.Stderr, "doorbuster-httpfault:", err)
		os.Exit(3)
	}
	stages := newRegistry()
	server := &http.Server{Handler: stages.api(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = server.Serve(listener) }()
	fmt.Fprintf(os.Stderr, "doorbuster-httpfault %s: API on http://%s\n", version, listener.Addr())

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = server.Shutdown(ctx)
	stages.closeAll()
}
