// kubectl-podvlan is a kubectl plugin (`kubectl podvlan ...`) with read-only views of Pods'
// VLAN secondary networks, IPPools and Nodes, and a check of the installation. See
// docs/kubectl-plugin.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	ippoolclient "github.com/podvlan/podvlan/pkg/client/clientset/versioned"
	"github.com/podvlan/podvlan/pkg/podvlanctl"
)

const usage = `kubectl podvlan: VLAN secondary networks of Pods, read-only.

Usage:
  kubectl podvlan pod NAME [-n NAMESPACE]   each secondary interface: network, VLAN, addresses,
                                            OVS port, last Event, condition
  kubectl podvlan pool [NAME]               usage, holders, per-Node share, leaks
  kubectl podvlan node NAME                 bridge, uplinks, ports, CNI chain, agent health
  kubectl podvlan doctor                    check the installation and say what to fix

Flags:
`

// errUnhealthy makes doctor exit 1 when a check failed, after printing the checks.
var errUnhealthy = errors.New("doctor found problems")

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, errUnhealthy) {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := pflag.NewFlagSet("kubectl-podvlan", pflag.ContinueOnError)
	var (
		kubeconfig = fs.String("kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
		kubeCtx    = fs.String("context", "", "the kubeconfig context to use")
		namespace  = fs.StringP("namespace", "n", "", "namespace of the Pod (default: the context's)")
		output     = fs.StringP("output", "o", podvlanctl.OutputTable, "output format: table or json")
		timeout    = fs.Duration("request-timeout", 30*time.Second, "bound on the whole command")
		as         = fs.String("as", "", "user to impersonate, as kubectl --as")
		asGroups   = fs.StringArray("as-group", nil, "group to impersonate, as kubectl --as-group (repeatable)")
	)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage+fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if *output != podvlanctl.OutputTable && *output != podvlanctl.OutputJSON {
		return fmt.Errorf("--output %q: must be table or json", *output)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return errors.New("no command given")
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: *kubeCtx}
	overrides.AuthInfo.Impersonate, overrides.AuthInfo.ImpersonateGroups = *as, *asGroups
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := loader.ClientConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.UserAgent = "kubectl-podvlan"
	ns := *namespace
	if ns == "" {
		if ns, _, err = loader.Namespace(); err != nil {
			return fmt.Errorf("namespace of the kubeconfig context: %w", err)
		}
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	pools, err := ippoolclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	nads, err := nadclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	c := &podvlanctl.Client{Kube: kube, Pools: pools, NADs: nads}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	return dispatch(ctx, c, rest, ns, *output, stdout)
}

// dispatch runs one command against c.
func dispatch(ctx context.Context, c *podvlanctl.Client, args []string, namespace, output string, w io.Writer) error {
	now := time.Now()
	asJSON := output == podvlanctl.OutputJSON
	cmd, operands := args[0], args[1:]
	switch cmd {
	case "pod", "pods", "po":
		if len(operands) != 1 {
			return errors.New("usage: kubectl podvlan pod NAME [-n NAMESPACE]")
		}
		r, err := c.Pod(ctx, namespace, operands[0])
		if err != nil {
			return err
		}
		if asJSON {
			return podvlanctl.WriteJSON(w, r)
		}
		return podvlanctl.WritePodReport(w, r, now)
	case "pool", "pools", "ippool", "ipp":
		switch len(operands) {
		case 0:
			rs, err := c.AllPools(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return podvlanctl.WriteJSON(w, rs)
			}
			return podvlanctl.WritePoolReports(w, rs)
		case 1:
			r, err := c.Pool(ctx, operands[0])
			if err != nil {
				return err
			}
			if asJSON {
				return podvlanctl.WriteJSON(w, r)
			}
			return podvlanctl.WritePoolReport(w, r)
		}
		return errors.New("usage: kubectl podvlan pool [NAME]")
	case "node", "nodes", "no":
		if len(operands) != 1 {
			return errors.New("usage: kubectl podvlan node NAME")
		}
		r, err := c.Node(ctx, operands[0])
		if err != nil {
			return err
		}
		if asJSON {
			return podvlanctl.WriteJSON(w, r)
		}
		return podvlanctl.WriteNodeReport(w, r, now)
	case "doctor":
		if len(operands) != 0 {
			return errors.New("usage: kubectl podvlan doctor")
		}
		checks := c.Doctor(ctx)
		var err error
		if asJSON {
			err = podvlanctl.WriteJSON(w, checks)
		} else {
			err = podvlanctl.WriteChecks(w, checks)
		}
		if err == nil && !podvlanctl.Healthy(checks) {
			err = errUnhealthy
		}
		return err
	}
	return fmt.Errorf("unknown command %q: pod, pool, node or doctor", cmd)
}
