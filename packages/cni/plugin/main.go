// ambient-cni: the chained CNI plugin of the ambient node agent. It runs after the node's primary
// CNI plugin for every pod sandbox and, on ADD, posts the pod's name, namespace, UID, netns and
// addresses to the node agent's plugin event socket, then waits: the agent answers only once an
// enrolled pod's capture rules are in place and ztunnel took the pod, so the app's first packet is
// already captured. The result of the previous plugin is passed through unchanged.
//
// Fail closed, as istio-cni's cni/pkg/plugin/plugin.go: a pod that is not a Kubernetes pod (no
// K8S_POD_NAME/K8S_POD_NAMESPACE) or is in an excluded namespace is passed through without asking;
// for any other pod an agent that cannot be reached, refuses, or does not answer in time fails the
// ADD, so the kubelet tears the sandbox down and tries again later instead of starting the pod
// uncaptured. DEL and CHECK have nothing to undo or verify here (the agent removes a pod's state
// when the API server deletes it), as upstream's CmdDelete and CmdCheck.
//
// Standard library only, built static (CGO_ENABLED=0).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Error codes of the CNI specification (SPEC.md, "Error").
const (
	errIncompatibleVersion = 1
	errInvalidEnv          = 4
	errDecoding            = 6
	errInvalidConfig       = 7
	errTryAgainLater       = 11
	errInternal            = 999
)

var supportedVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// netConf is what the runtime writes on stdin: the plugin entry of the conflist, with the
// list's name and version, and the previous plugin's result.
type netConf struct {
	CNIVersion        string          `json:"cniVersion"`
	Name              string          `json:"name"`
	Type              string          `json:"type"`
	AgentSocket       string          `json:"agent_socket"`
	ExcludeNamespaces []string        `json:"exclude_namespaces"`
	TimeoutSeconds    float64         `json:"timeout_seconds"`
	PrevResult        json.RawMessage `json:"prevResult,omitempty"`
}

// addEvent is the body of POST /cmdadd (the agent's decodePluginAddEvent).
type addEvent struct {
	Netns        string   `json:"netns"`
	PodName      string   `json:"podName"`
	PodNamespace string   `json:"podNamespace"`
	PodUID       string   `json:"podUid,omitempty"`
	IPs          []string `json:"ips"`
}

type cniError struct {
	Code    int    `json:"code"`
	Msg     string `json:"msg"`
	Details string `json:"details,omitempty"`
}

func (e *cniError) Error() string { return e.Msg }

func fail(code int, msg string, details string) *cniError {
	return &cniError{Code: code, Msg: msg, Details: details}
}

func main() {
	out, version, err := run(os.Getenv, os.Stdin)
	if err != nil {
		body, _ := json.Marshal(struct {
			CNIVersion string `json:"cniVersion"`
			*cniError
		}{version, err})
		os.Stdout.Write(append(body, '\n'))
		fmt.Fprintf(os.Stderr, "ambient-cni: %s: %s\n", err.Msg, err.Details)
		os.Exit(1)
	}
	if out != nil {
		os.Stdout.Write(append(out, '\n'))
	}
}

// run executes the command; the version is the configuration's when it could be read (errors are
// written in it, as the spec asks), else the newest supported.
func run(getenv func(string) string, stdin io.Reader) ([]byte, string, *cniError) {
	version := "1.1.0"
	out, err := runCommand(getenv, stdin, &version)
	return out, version, err
}

func runCommand(getenv func(string) string, stdin io.Reader, version *string) ([]byte, *cniError) {
	command := getenv("CNI_COMMAND")
	switch command {
	case "VERSION":
		return marshal(map[string]interface{}{"cniVersion": "1.1.0", "supportedVersions": supportedVersions})
	case "ADD", "DEL", "CHECK", "GC", "STATUS":
	case "":
		return nil, fail(errInvalidEnv, "CNI_COMMAND is not set", "")
	default:
		return nil, fail(errInvalidEnv, "unknown CNI_COMMAND", command)
	}
	raw, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
	if err != nil {
		return nil, fail(errDecoding, "cannot read the network configuration", err.Error())
	}
	var conf netConf
	if err := json.Unmarshal(raw, &conf); err != nil {
		return nil, fail(errDecoding, "network configuration is not valid JSON", err.Error())
	}
	if !supported(conf.CNIVersion) {
		return nil, fail(errIncompatibleVersion, "unsupported cniVersion", conf.CNIVersion)
	}
	*version = conf.CNIVersion
	switch command {
	case "ADD":
		return add(getenv, conf)
	case "CHECK":
		// A chained plugin must be given the previous result to check against (SPEC.md).
		if conf.PrevResult == nil {
			return nil, fail(errInvalidConfig, "CHECK without prevResult", "")
		}
		return nil, nil
	default:
		return nil, nil
	}
}

func marshal(v interface{}) ([]byte, *cniError) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fail(errInternal, "cannot encode the result", err.Error())
	}
	return b, nil
}

func supported(v string) bool {
	for _, s := range supportedVersions {
		if s == v {
			return true
		}
	}
	return false
}

// cniArgs reads CNI_ARGS: `K=V;K=V`.
func cniArgs(s string) map[string]string {
	args := map[string]string{}
	for _, kv := range strings.Split(s, ";") {
		if i := strings.IndexByte(kv, '='); i > 0 {
			args[kv[:i]] = kv[i+1:]
		}
	}
	return args
}

// passThrough is the ADD result: the previous plugin's, in the configuration's version, or an
// empty result when this plugin runs first.
func passThrough(conf netConf) ([]byte, *cniError) {
	if conf.PrevResult == nil {
		return marshal(map[string]interface{}{"cniVersion": conf.CNIVersion})
	}
	var prev map[string]interface{}
	if err := json.Unmarshal(conf.PrevResult, &prev); err != nil || prev == nil {
		return nil, fail(errDecoding, "prevResult is not a JSON object", "")
	}
	prev["cniVersion"] = conf.CNIVersion
	return marshal(prev)
}

// prevIPs are the pod's addresses from the previous result (`ips[].address`, CIDR notation).
func prevIPs(prevResult json.RawMessage) []string {
	var prev struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	ips := []string{}
	if prevResult == nil || json.Unmarshal(prevResult, &prev) != nil {
		return ips
	}
	for _, ip := range prev.IPs {
		addr := ip.Address
		if i := strings.IndexByte(addr, '/'); i >= 0 {
			addr = addr[:i]
		}
		if addr != "" {
			ips = append(ips, addr)
		}
	}
	return ips
}

func add(getenv func(string) string, conf netConf) ([]byte, *cniError) {
	args := cniArgs(getenv("CNI_ARGS"))
	name, namespace := args["K8S_POD_NAME"], args["K8S_POD_NAMESPACE"]
	if name == "" || namespace == "" {
		// Not a Kubernetes pod: nothing for the mesh to decide.
		return passThrough(conf)
	}
	for _, ns := range conf.ExcludeNamespaces {
		if ns == namespace {
			return passThrough(conf)
		}
	}
	netns := getenv("CNI_NETNS")
	if netns == "" {
		return nil, fail(errInvalidEnv, "CNI_NETNS is not set", "")
	}
	if conf.AgentSocket == "" {
		return nil, fail(errInvalidConfig, "agent_socket is not set", "")
	}
	if _, err := passThrough(conf); err != nil {
		return nil, err
	}
	timeout := 30 * time.Second
	if conf.TimeoutSeconds > 0 {
		timeout = time.Duration(conf.TimeoutSeconds * float64(time.Second))
	}
	event := addEvent{Netns: netns, PodName: name, PodNamespace: namespace, PodUID: args["K8S_POD_UID"], IPs: prevIPs(conf.PrevResult)}
	if err := postEvent(conf.AgentSocket, event, timeout); err != nil {
		return nil, err
	}
	return passThrough(conf)
}

func postEvent(socket string, event addEvent, timeout time.Duration) *cniError {
	body, _ := json.Marshal(event)
	client := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
		},
	}
	pod := event.PodNamespace + "/" + event.PodName
	res, err := client.Post("http://agent/cmdadd", "application/json", bytes.NewReader(body))
	if err != nil {
		return fail(errTryAgainLater, "node agent unreachable; pod "+pod+" not started uncaptured", err.Error())
	}
	defer res.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(res.Body, 64*1024))
	if res.StatusCode != http.StatusOK {
		return fail(errInternal, fmt.Sprintf("node agent refused pod %s (status %d)", pod, res.StatusCode), strings.TrimSpace(string(reply)))
	}
	return nil
}
