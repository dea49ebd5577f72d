//go:build tools

// Package judges pins the programs built from this module.
package judges

import (
	_ "github.com/bitnami-labs/sealed-secrets/cmd/controller"
	_ "github.com/bitnami-labs/sealed-secrets/cmd/kubeseal"
)
