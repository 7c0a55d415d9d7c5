package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parse(t *testing.T, args ...string) *options {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o := newOptions()
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "antrea-controller.conf")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRegistrationFromFlags(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		wantURL     string
		wantService string
		wantErr     string
	}{
		{name: "by default the Service kube-system/antrea-controller is registered", wantService: "kube-system/antrea-controller"},
		{name: "a URL without a path gets the webhook path", args: []string{"--webhook-url=https://127.0.0.1:10349"},
			wantURL: "https://127.0.0.1:10349/validate-ippool", wantService: "kube-system/antrea-controller"},
		{name: "a URL with a path is kept", args: []string{"--webhook-url=https://10.0.0.5:8443/custom"},
			wantURL: "https://10.0.0.5:8443/custom", wantService: "kube-system/antrea-controller"},
		{name: "another Service is accepted", args: []string{"--webhook-service=ipam/ctrl"}, wantService: "ipam/ctrl"},
		{name: "a plain http URL is refused", args: []string{"--webhook-url=http://127.0.0.1:10349"}, wantErr: "https only"},
		{name: "a URL with a query is refused", args: []string{"--webhook-url=https://127.0.0.1:10349/x?a=b"}, wantErr: "query"},
		{name: "a Service without a namespace is refused", args: []string{"--webhook-service=antrea-controller"}, wantErr: "want namespace/name"},
		{name: "an empty configuration name is refused", args: []string{"--webhook-name="}, wantErr: "--webhook-name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := parse(t, tt.args...).registration()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if reg.URL != tt.wantURL || reg.Service.Namespace+"/"+reg.Service.Name != tt.wantService {
				t.Fatalf("registration %+v, want URL %q service %q", reg, tt.wantURL, tt.wantService)
			}
			if reg.ConfigurationName != "antrea-controller-ippool" {
				t.Errorf("configuration name %q", reg.ConfigurationName)
			}
		})
	}
}

func TestComplete(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		config     string
		args       []string
		wantErr    string
		wantClient bool
		check      func(t *testing.T, o *options)
	}{
		{
			name:       "with AntreaIPAM on, --kubeconfig overrides the configuration's kubeconfig",
			config:     "featureGates: {AntreaIPAM: true}\nclientConnection: {kubeconfig: /nonexistent}\n",
			args:       []string{"--kubeconfig=" + kubeconfig},
			wantClient: true,
		},
		{
			name:   "with AntreaIPAM off no API client is needed",
			config: "featureGates: {AntreaIPAM: false}\n",
		},
		{
			name:    "a configuration error names the file",
			config:  "ovsBridges: []\n",
			wantErr: "antrea-controller.conf",
		},
		{
			name:    "a bad IPPool selector is refused",
			config:  "featureGates: {AntreaIPAM: false}\n",
			args:    []string{"--ippool-selector=a in (b"},
			wantErr: "--ippool-selector",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--config=" + writeConfig(t, tt.config)}, tt.args...)
			opts, err := parse(t, args...).complete()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (opts.RestConfig != nil) != tt.wantClient {
				t.Fatalf("rest config %v, want one: %v", opts.RestConfig, tt.wantClient)
			}
			if tt.wantClient && opts.RestConfig.Host != "https://127.0.0.1:1" {
				t.Errorf("host %q, want the one of --kubeconfig", opts.RestConfig.Host)
			}
		})
	}
}

func TestSelectorRestrictsBothWebhookAndCollector(t *testing.T) {
	path := writeConfig(t, "featureGates: {AntreaIPAM: false}\n")
	opts, err := parse(t, "--config="+path, "--ippool-selector=team=a").complete()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Webhook.ObjectSelector == nil || opts.Webhook.ObjectSelector.MatchLabels["team"] != "a" {
		t.Errorf("webhook object selector %+v", opts.Webhook.ObjectSelector)
	}
	if opts.GCPoolSelector == nil || opts.GCPoolSelector.String() != "team=a" {
		t.Errorf("collector selector %v", opts.GCPoolSelector)
	}
}

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"an unknown flag exits 2", []string{"--no-such-flag"}, 2},
		{"a missing configuration file exits 1", []string{"--config=" + filepath.Join(t.TempDir(), "missing.conf")}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(tt.args); got != tt.want {
				t.Fatalf("exit code %d, want %d", got, tt.want)
			}
		})
	}
}
