package operator

import (
	"fmt"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Resources the operator writes, in apply order: what a ScaledJob refers to
// comes before it. Pruning walks the list backwards.
var (
	SecretResource                = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	TriggerAuthenticationResource = kedav1alpha1.GroupVersion.WithResource("triggerauthentications")
	NetworkPolicyResource         = schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}
	ScaledJobResource             = kedav1alpha1.GroupVersion.WithResource("scaledjobs")

	managedResources = []schema.GroupVersionResource{SecretResource, TriggerAuthenticationResource, NetworkPolicyResource, ScaledJobResource}
)

// object is one rendered object ready for server-side apply.
type object struct {
	resource schema.GroupVersionResource
	obj      *unstructured.Unstructured
}

// applyList flattens Objects in apply order.
func (o Objects) applyList() ([]object, error) {
	typed := []struct {
		res schema.GroupVersionResource
		obj runtime.Object
	}{{SecretResource, o.Secret}, {TriggerAuthenticationResource, o.TriggerAuthentication}, {NetworkPolicyResource, o.NetworkPolicy}}
	for _, sj := range o.ScaledJobs {
		typed = append(typed, struct {
			res schema.GroupVersionResource
			obj runtime.Object
		}{ScaledJobResource, sj})
	}
	out := make([]object, 0, len(typed))
	for _, t := range typed {
		u, err := ToUnstructured(t.obj)
		if err != nil {
			return nil, err
		}
		out = append(out, object{t.res, u})
	}
	return out, nil
}

// ToUnstructured turns a rendered object into the apply configuration the
// operator sends: no status, and no null fields (a null in an apply
// configuration would claim the field just to clear it).
func ToUnstructured(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %T: %w", obj, err)
	}
	delete(m, "status")
	dropNulls(m)
	return &unstructured.Unstructured{Object: m}, nil
}

func dropNulls(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(x, k)
				continue
			}
			dropNulls(e)
		}
	case []any:
		for _, e := range x {
			dropNulls(e)
		}
	}
}
