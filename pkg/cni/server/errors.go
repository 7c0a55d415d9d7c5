package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/podvlan/podvlan/pkg/cni/cnipb"
)

// cniErrorFor turns the error a Handler returned for command into the CNI error the shim prints.
//
//   - A *types.Error anywhere in the chain keeps its code and details. When it was wrapped, the
//     message keeps the wrapping context ("attach net1: bad vlan") without repeating the details.
//   - context.DeadlineExceeded or context.Canceled: 11 (try again later), because the command was
//     cut short, not refused.
//   - Anything else: 999 (internal error), except for STATUS, where any failure means the plugin
//     cannot serve ADD: 50 (plugin not available).
func cniErrorFor(command string, err error) *cnipb.CniError {
	var cniErr *types.Error
	if errors.As(err, &cniErr) && cniErr != nil {
		msg := cniErr.Msg
		if full := err.Error(); full != cniErr.Error() {
			msg = strings.Replace(full, cniErr.Error(), cniErr.Msg, 1)
		}
		return &cnipb.CniError{Code: uint32(cniErr.Code), Msg: msg, Details: cniErr.Details}
	}
	code := types.ErrInternal
	switch {
	case command == CommandStatus:
		code = types.ErrPluginNotAvailable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		code = types.ErrTryAgainLater
	}
	return &cnipb.CniError{Code: uint32(code), Msg: err.Error()}
}

// encodeResult encodes an ADD result in the CNI version the network configuration asked for.
func encodeResult(result types.Result, cniVersion string) ([]byte, *cnipb.CniError) {
	if result == nil {
		return nil, &cnipb.CniError{Code: uint32(types.ErrInternal), Msg: "antrea-agent produced no result for ADD"}
	}
	converted, err := result.GetAsVersion(cniVersion)
	if err != nil {
		return nil, &cnipb.CniError{
			Code:    uint32(types.ErrIncompatibleCNIVersion),
			Msg:     fmt.Sprintf("cannot encode the result as CNI version %q", cniVersion),
			Details: err.Error(),
		}
	}
	encoded, err := json.Marshal(converted)
	if err != nil {
		return nil, &cnipb.CniError{Code: uint32(types.ErrInternal), Msg: "cannot encode the result", Details: err.Error()}
	}
	return encoded, nil
}
