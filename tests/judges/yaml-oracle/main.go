// yaml-oracle: how Go's YAML libraries read a stream, for tests/interop_yaml.rs.
//
// Built by scripts/install-test-deps from the Go module proxy (go.mod here pins gopkg.in/yaml.v3
// v3.0.1 and sigs.k8s.io/yaml v1.6.0, the versions kubectl v1.37 builds with).
//
// stdin: a JSON array of YAML streams. stdout: a JSON array with, per stream,
// {"yamlv3": [docs...] | {"error": "..."}, "sigs": [docs...] | {"error": "..."}}.
// "yamlv3" is gopkg.in/yaml.v3's Decoder over the whole stream; "sigs" is what kubectl, kustomize
// and Flux do: split the stream into documents line by line at `---` (as
// k8s.io/apimachinery/pkg/util/yaml's YAMLReader does), then sigs.k8s.io/yaml.YAMLToJSON on each
// (go.yaml.in/yaml/v2, the maintained yaml.v2, underneath). Null documents are dropped in both.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	yamlv3 "gopkg.in/yaml.v3"
	sigsyaml "sigs.k8s.io/yaml"
)

func normalize(v interface{}) (interface{}, error) {
	switch t := v.(type) {
	case map[string]interface{}:
		out := map[string]interface{}{}
		for k, x := range t {
			n, err := normalize(x)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case map[interface{}]interface{}:
		out := map[string]interface{}{}
		for k, x := range t {
			n, err := normalize(x)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = n
		}
		return out, nil
	case []interface{}:
		out := make([]interface{}, len(t))
		for i, x := range t {
			n, err := normalize(x)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	default:
		return v, nil
	}
}

func viaV3(stream string) interface{} {
	dec := yamlv3.NewDecoder(strings.NewReader(stream))
	docs := []interface{}{}
	for {
		var v interface{}
		err := dec.Decode(&v)
		if err == io.EOF {
			break
		}
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		if v == nil {
			continue
		}
		n, err := normalize(v)
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		docs = append(docs, n)
	}
	return docs
}

// splitDocuments follows apimachinery's YAMLReader: lines, `---` at the start of a line followed
// only by spaces or a comment separates documents.
func splitDocuments(stream string) ([]string, error) {
	r := bufio.NewReader(strings.NewReader(stream))
	var docs []string
	var buf bytes.Buffer
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			if bytes.HasPrefix(line, []byte("---")) {
				rest := strings.TrimSpace(string(line[3:]))
				if len(rest) > 0 && rest[0] != '#' {
					return nil, fmt.Errorf("invalid document separator: %q", strings.TrimSpace(string(line)))
				}
				if buf.Len() > 0 {
					docs = append(docs, buf.String())
					buf.Reset()
				}
			} else {
				buf.Write(line)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if buf.Len() > 0 {
		docs = append(docs, buf.String())
	}
	return docs, nil
}

func viaSigs(stream string) interface{} {
	parts, err := splitDocuments(stream)
	if err != nil {
		return map[string]string{"error": err.Error()}
	}
	docs := []interface{}{}
	for _, p := range parts {
		j, err := sigsyaml.YAMLToJSON([]byte(p))
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		var v interface{}
		if err := json.Unmarshal(j, &v); err != nil {
			return map[string]string{"error": err.Error()}
		}
		if v == nil {
			continue
		}
		docs = append(docs, v)
	}
	return docs
}

func main() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var streams []string
	if err := json.Unmarshal(input, &streams); err != nil {
		fmt.Fprintln(os.Stderr, "stdin must be a JSON array of strings:", err)
		os.Exit(2)
	}
	out := make([]map[string]interface{}, len(streams))
	for i, s := range streams {
		out[i] = map[string]interface{}{"yamlv3": viaV3(s), "sigs": viaSigs(s)}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}
