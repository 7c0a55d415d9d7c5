package cnihandler

import (
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/podvlan/podvlan/pkg/cni/request"
)

// podArgs are the CNI_ARGS the container runtime (and Multus) pass.
type podArgs struct {
	types.CommonArgs
	K8S_POD_NAMESPACE          types.UnmarshallableString //nolint:revive // names fixed by the runtimes
	K8S_POD_NAME               types.UnmarshallableString //nolint:revive
	K8S_POD_UID                types.UnmarshallableString //nolint:revive
	K8S_POD_INFRA_CONTAINER_ID types.UnmarshallableString //nolint:revive
	// MAC and IP are how Multus passes the annotation's mac and ips to a delegate.
	MAC types.UnmarshallableString
	IP  types.UnmarshallableString
}

// parsedArgs is podArgs validated.
type parsedArgs struct {
	Namespace, Name, UID string
	MAC                  net.HardwareAddr
	IPs                  []request.IP
}

func (a parsedArgs) hasPod() bool { return a.Namespace != "" && a.Name != "" }

func parseArgs(raw string) (parsedArgs, error) {
	var args podArgs
	if err := types.LoadArgs(raw, &args); err != nil {
		return parsedArgs{}, types.NewError(types.ErrInvalidEnvironmentVariables, "invalid CNI_ARGS", err.Error())
	}
	out := parsedArgs{Namespace: string(args.K8S_POD_NAMESPACE), Name: string(args.K8S_POD_NAME), UID: string(args.K8S_POD_UID)}
	if mac := string(args.MAC); mac != "" {
		hw, err := request.ParseMAC(mac)
		if err != nil {
			return parsedArgs{}, types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("invalid CNI_ARGS MAC=%s: %v", mac, err), "")
		}
		out.MAC = hw
	}
	if ips := string(args.IP); ips != "" {
		for _, s := range strings.Split(ips, ",") {
			ip, err := request.ParseIP(strings.TrimSpace(s))
			if err != nil {
				return parsedArgs{}, types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("invalid CNI_ARGS IP=%s: %v", ips, err), "")
			}
			out.IPs = append(out.IPs, ip)
		}
	}
	return out, nil
}
