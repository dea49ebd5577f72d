// flux-githubapp-probe: Flux's own GitHub App client (github.com/fluxcd/pkg/auth/githubapp, what
// source-controller calls for a GitRepository with provider: github) given the `data` of a
// Secret as JSON on stdin (base64 values, as in a Kubernetes Secret). It signs the JWT, asks the
// API in githubAppBaseURL for an installation token and prints {"username": ..., "password": ...}
// (the token the API issued), or {"error": ...} with exit 1.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/fluxcd/pkg/auth/githubapp"
)

func main() {
	var data map[string]string
	if err := json.NewDecoder(os.Stdin).Decode(&data); err != nil {
		fail(fmt.Errorf("reading the Secret data: %w", err))
	}
	appData := map[string][]byte{}
	for k, v := range data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			fail(fmt.Errorf("key %s: %w", k, err))
		}
		appData[k] = b
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	user, pass, err := githubapp.GetCredentials(ctx, githubapp.WithAppData(appData))
	if err != nil {
		fail(err)
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"username": user, "password": pass})
}

func fail(err error) {
	_ = json.NewEncoder(os.Stdout).Encode(map[string]string{"error": err.Error()})
	os.Exit(1)
}
