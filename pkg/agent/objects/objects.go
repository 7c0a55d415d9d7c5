// Package objects finds the Kubernetes objects the agent acts on: from informer caches first, and
// from the API server when the cache does not have them (yet) or has another generation of them.
// A CNI ADD often arrives before the watch has delivered a Pod that was just created.
package objects

import (
	"context"
	"fmt"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	nadlisters "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/listers/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
	crdlisters "github.com/podvlan/podvlan/pkg/client/listers/crd/v1beta1"
)

// Pods finds Pods of this Node.
type Pods struct {
	Client kubernetes.Interface
	Lister corelisters.PodLister
}

// Get returns the Pod; uid, when not empty, must match, so that a Pod recreated under the same
// name is not mistaken for the one the runtime asks about.
func (p *Pods) Get(ctx context.Context, namespace, name, uid string) (*corev1.Pod, error) {
	if pod, err := p.Lister.Pods(namespace).Get(name); err == nil && (uid == "" || string(pod.UID) == uid) {
		return pod, nil
	}
	pod, err := p.Client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if uid != "" && string(pod.UID) != uid {
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), fmt.Sprintf("%s/%s with UID %s", namespace, name, uid))
	}
	return pod, nil
}

// Exists reports whether the Pod still exists with that UID (any UID when uid is empty), asking
// the API server, which is the authority when deciding to remove something.
func (p *Pods) Exists(ctx context.Context, namespace, name, uid string) (bool, error) {
	pod, err := p.Client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return uid == "" || string(pod.UID) == uid, nil
}

// Lookup finds the objects a plan refers to, NetworkAttachmentDefinitions and IPPools; it
// implements plan.Lookup.
type Lookup struct {
	NADClient  nadclient.Interface
	NADLister  nadlisters.NetworkAttachmentDefinitionLister
	CRDClient  versioned.Interface
	PoolLister crdlisters.IPPoolLister
}

var nadResource = schema.GroupResource{Group: "k8s.cni.cncf.io", Resource: "network-attachment-definitions"}

// NAD returns a NetworkAttachmentDefinition.
func (n *Lookup) NAD(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	if nad, err := n.NADLister.NetworkAttachmentDefinitions(namespace).Get(name); err == nil {
		return nad, nil
	}
	nad, err := n.NADClient.K8sCniCncfIoV1().NetworkAttachmentDefinitions(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewNotFound(nadResource, namespace+"/"+name)
	}
	return nad, err
}

// IPPool returns an IPPool.
func (n *Lookup) IPPool(ctx context.Context, name string) (*v1beta1.IPPool, error) {
	if pool, err := n.PoolLister.Get(name); err == nil {
		return pool, nil
	}
	return n.CRDClient.CrdV1beta1().IPPools().Get(ctx, name, metav1.GetOptions{})
}
