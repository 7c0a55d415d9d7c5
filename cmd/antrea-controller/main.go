// Command antrea-controller validates IPPools with an admission webhook and releases IPPool
// allocations whose owner Pod is gone. See pkg/controller for what it runs and options.go for flags.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/controller"
	"github.com/podvlan/podvlan/pkg/version"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run parses args, then runs the controller until SIGTERM or SIGINT; it returns the exit code.
func run(args []string) int {
	fs := flag.NewFlagSet("antrea-controller", flag.ContinueOnError)
	o := newOptions()
	o.addFlags(fs)
	printVersion := fs.Bool("version", false, "print the version and exit")
	klog.InitFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *printVersion {
		fmt.Println(version.Get().String("antrea-controller"))
		return 0
	}
	defer klog.Flush()
	klog.InfoS("Starting antrea-controller", version.Get().KeysAndValues()...)
	opts, err := o.complete()
	if err != nil {
		klog.ErrorS(err, "Invalid configuration")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	c, err := controller.New(opts)
	if err != nil {
		klog.ErrorS(err, "Could not start antrea-controller")
		return 1
	}
	if err := c.Run(ctx); err != nil {
		klog.ErrorS(err, "antrea-controller failed")
		return 1
	}
	klog.InfoS("antrea-controller stopped")
	return 0
}
