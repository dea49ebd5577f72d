//go:build tools

// Keeps helm's main package in this module's build list (go build PKG builds it).
package tools

import _ "helm.sh/helm/v4/cmd/helm"
