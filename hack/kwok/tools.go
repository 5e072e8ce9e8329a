//go:build tools

// Package tools records the kwok main package hack/build-k8s.sh builds, so
// that `go mod tidy` keeps its dependencies in go.mod/go.sum.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
