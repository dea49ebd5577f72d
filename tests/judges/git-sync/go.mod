// Wrapper module: builds git-sync v4.7.1 for the tests. The Go module proxy does not serve
// k8s.io/git-sync (its v4 tags are not valid versions for that module path, and it refuses the
// pseudo-version of the v4.7.1 commit), so upstream/ holds that commit's Go source and LICENSE
// unchanged (its vendor/, tests and docs left out); the dependencies come from the proxy at the
// versions upstream's go.mod pins.
module sealkey.test/judges/git-sync

go 1.26.2

require k8s.io/git-sync v0.0.0-20260706174027-d9d12f7e9839

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.1.2 // indirect
	github.com/go-logr/logr v1.2.3 // indirect
	github.com/golang-jwt/jwt/v4 v4.5.2 // indirect
	github.com/golang/protobuf v1.5.2 // indirect
	github.com/matttproud/golang_protobuf_extensions v1.0.2-0.20181231171920-c182affec369 // indirect
	github.com/prometheus/client_golang v1.14.0 // indirect
	github.com/prometheus/client_model v0.3.0 // indirect
	github.com/prometheus/common v0.37.0 // indirect
	github.com/prometheus/procfs v0.8.0 // indirect
	github.com/spf13/pflag v1.0.5 // indirect
	golang.org/x/sys v0.0.0-20220520151302-bc2c85ada10a // indirect
	google.golang.org/protobuf v1.33.0 // indirect
)

replace k8s.io/git-sync => ./upstream
