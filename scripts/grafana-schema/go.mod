module github.com/doorbuster/doorbuster/scripts/grafana-schema

go 1.21

// The Foundation SDK's Go module: only v0.0.x tags are published on the module proxy.
require github.com/grafana/grafana-foundation-sdk/go v0.0.22
