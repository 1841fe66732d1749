// Command doorbuster-grafana-schema checks Grafana dashboard JSON files against the strict
// schema of Grafana's Foundation SDK: every required field present, no unexpected field, each
// value of its type, and the SDK's own validation constraints.
//
// Usage: doorbuster-grafana-schema FILE.json...
//
// It prints one line per problem, "FILE: PATH: MESSAGE", and exits 1 when a dashboard has
// one, 2 on usage errors or a file that can not be read or is not JSON, 0 otherwise.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: doorbuster-grafana-schema DASHBOARD.json...")
		os.Exit(2)
	}
	// Panels' options and queries are checked by the schema of their plugin (timeseries,
	// prometheus, ...), which the SDK only knows once they are registered.
	plugins.RegisterDefaultPlugins()
	status := 0
	for _, path := range os.Args[1:] {
		problems, err := check(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			status = 2
			continue
		}
		for _, problem := range problems {
			fmt.Printf("%s: %s\n", path, problem)
		}
		if len(problems) > 0 && status == 0 {
			status = 1
		}
	}
	os.Exit(status)
}

// check returns the schema problems of one dashboard file, or an error when it can not be
// read or is not JSON at all.
func check(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !json.Valid(raw) {
		return nil, errors.New("not valid JSON")
	}
	var board dashboard.Dashboard
	if err := board.UnmarshalJSONStrict(raw); err != nil {
		return messages(err), nil
	}
	if err := board.Validate(); err != nil {
		return messages(err), nil
	}
	return nil, nil
}

func messages(err error) []string {
	var buildErrs cog.BuildErrors
	if errors.As(err, &buildErrs) {
		out := make([]string, 0, len(buildErrs))
		for _, e := range buildErrs {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}
