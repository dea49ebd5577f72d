//go:build tools

// Package judges pins the programs built from this module.
package judges

import _ "go.etcd.io/etcd/server/v3"
