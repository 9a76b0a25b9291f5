package operator

import (
	"bytes"
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/mpegflow/mpegflow/internal/store"
)

// Redacted replaces secret values in a plan: a plan is for reading tuning,
// and must be safe to paste into a ticket.
const Redacted = "<redacted>"

// Plan renders pool p as the multi-document YAML the operator applies
// (apply order), with Secret data redacted.
func Plan(cfg Config, p store.Pool) ([]byte, error) {
	objs, err := Render(cfg, p)
	if err != nil {
		return nil, err
	}
	list, err := objs.applyList()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for i, o := range list {
		if o.resource == SecretResource {
			data, _ := o.obj.Object["data"].(map[string]any)
			for k := range data {
				data[k] = Redacted
			}
		}
		b, err := yaml.Marshal(o.obj.Object)
		if err != nil {
			return nil, fmt.Errorf("marshal %s %s: %w", o.obj.GetKind(), o.obj.GetName(), err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}
