// Our own probe, not an upstream program: how Go's YAML libraries read a stream. Pinned to the
// versions kubectl v1.37 (sigs.k8s.io/yaml) and kustomize/Flux (gopkg.in/yaml.v3) build with.
module sealkey.test/yaml-oracle

go 1.24

require (
	gopkg.in/yaml.v3 v3.0.1
	sigs.k8s.io/yaml v1.6.0
)

require go.yaml.in/yaml/v2 v2.4.2 // indirect
