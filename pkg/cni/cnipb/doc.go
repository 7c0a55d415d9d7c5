// Package cnipb is the gRPC protocol between the `antrea` CNI shim and antrea-agent, generated from
// cni.proto by hack/generate-proto.sh (`make generate`). Only this file is written by hand.
package cnipb
