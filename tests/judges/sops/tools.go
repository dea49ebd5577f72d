//go:build tools

// Package judges pins the programs built from this module.
package judges

import (
	_ "github.com/getsops/sops/v3/cmd/sops"
)
