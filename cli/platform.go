package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	apiv1 "github.com/mpegflow/mpegflow/api/v1"
	"github.com/mpegflow/mpegflow/client"
)

// platformCmd groups what a SuperAdmin runs for the whole platform.
func platformCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "platform", Short: "Platform administration (SuperAdmin)"}
	policy := &cobra.Command{Use: "policy", Short: "The platform policy: what each plan, and each overridden organization, may do with dedicated pools"}
	policy.AddCommand(policyGetCmd(), policySetCmd())
	cmd.AddCommand(policy)
	return cmd
}

func policyGetCmd() *cobra.Command {
	var api apiFlags
	cmd := &cobra.Command{
		Use:     "get",
		Short:   "Show the platform policy (-o json prints the document `set` takes)",
		Example: "  mpegflow platform policy get -o json > policy.json",
		Args:    args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			d, err := c.GetPlatformPolicy(cmd.Context())
			if err != nil {
				return fmt.Errorf("read the platform policy: %w", err)
			}
			return renderPolicy(cmd, d)
		},
	}
	outputFlag(cmd)
	addAPIFlags(cmd, &api)
	return cmd
}

func policySetCmd() *cobra.Command {
	var (
		api  apiFlags
		file string
	)
	cmd := &cobra.Command{
		Use:     "set -f FILE",
		Short:   "Replace the platform policy with a JSON document (- reads standard input)",
		Example: "  mpegflow platform policy get -o json > policy.json\n  # edit policy.json\n  mpegflow platform policy set -f policy.json",
		Args:    args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usagef("-f FILE is required (- for standard input)")
			}
			var raw []byte
			var err error
			if file == "-" {
				raw, err = io.ReadAll(cmd.InOrStdin())
			} else {
				raw, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", file, err)
			}
			// What `get -o json` prints carries updated_at and updated_by;
			// they are the server's, so drop them rather than refuse them.
			var doc struct {
				apiv1.PlatformPolicy
				UpdatedAt any `json:"updated_at"`
				UpdatedBy any `json:"updated_by"`
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&doc); err != nil {
				return usagef("%s is not a platform policy document: %v", file, err)
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			d, err := c.PutPlatformPolicy(cmd.Context(), doc.PlatformPolicy)
			if err != nil {
				return fmt.Errorf("replace the platform policy: %w", err)
			}
			return renderPolicy(cmd, d)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the policy document (JSON, as `get -o json` prints it)")
	outputFlag(cmd)
	addAPIFlags(cmd, &api)
	return cmd
}

// renderPolicy prints one row per plan, then one per override.
func renderPolicy(cmd *cobra.Command, d client.PlatformPolicyDocument) error {
	return render(cmd.OutOrStdout(), outputFormat(cmd), d, func() *table {
		t := &table{header: []string{"PLAN", "DEDICATED", "POOLS", "REPLICAS/POOL", "REPLICAS/ORG", "PREWARMED/POOL", "PREWARMED/ORG", "GPUS", "NODE-SELECTORS"}}
		row := func(name string, r client.PlanPolicy) {
			gpus := "no"
			if r.GPU {
				gpus = fmt.Sprint(r.MaxGPUs)
			}
			sel := strings.Join(r.NodeSelectors, ",")
			if sel == "" {
				sel = "-"
			}
			t.add(name, fmt.Sprint(r.DedicatedPools), fmt.Sprint(r.MaxPools), fmt.Sprint(r.MaxReplicasPerPool), fmt.Sprint(r.MaxReplicasPerOrg),
				fmt.Sprint(r.MaxPrewarmedPerPool), fmt.Sprint(r.MaxPrewarmedPerOrg), gpus, sel)
		}
		for _, name := range apiv1.Plans {
			row(name, d.Plans[name])
		}
		ids := make([]string, 0, len(d.Organizations))
		for id := range d.Organizations {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			row("org "+id, d.Organizations[id])
		}
		return t
	})
}
