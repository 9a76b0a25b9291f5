package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/client"
)

func webhooksCmd() *cobra.Command {
	var api apiFlags
	cmd := apiGroup("webhooks", "Register webhooks and inspect or repeat their deliveries", &api)
	cmd.AddCommand(
		pagedListCmd(&api, "List webhooks, newest first", "webhooks", (*client.Client).ListWebhooks, webhooksTable),
		actionCmd("get ID", "Show a webhook", "webhook", nil, api.client, (*client.Client).GetWebhook, webhooksTable),
		webhooksCreateCmd(&api), webhooksUpdateCmd(&api), webhooksDeleteCmd(&api),
		webhooksDeliveriesCmd(&api), webhooksRedeliverCmd(&api))
	return cmd
}

func webhooksTable(ws []client.Webhook) *table {
	t := &table{header: []string{"ID", "URL", "EVENTS", "ENABLED", "FAILURES", "DESCRIPTION"}}
	for _, w := range ws {
		enabled := fmt.Sprint(w.Enabled)
		if r := deref(w.DisabledReason); !w.Enabled && r != "" {
			enabled += " (" + r + ")"
		}
		t.add(w.ID, w.URL, strings.Join(w.Events, ","), enabled, fmt.Sprint(w.ConsecutiveFailures), w.Description)
	}
	return t
}

// checkEvents refuses an event type the server does not know before asking
// it, naming the ones it does.
func checkEvents(evs []string) error {
	for _, e := range evs {
		if !slices.Contains(client.WebhookEvents, e) {
			return usagef("unknown event %q: want one of %s", e, strings.Join(client.WebhookEvents, ", "))
		}
	}
	return nil
}

func webhooksCreateCmd(api *apiFlags) *cobra.Command {
	var req client.WebhookRequest
	cmd := &cobra.Command{
		Use:     "create --url URL --event TYPE...",
		Short:   "Register a webhook; its signing secret is shown once",
		Example: "  mpegflow webhooks create --url https://hooks.example.com/mpegflow --event job.completed --event job.failed",
		Args:    args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.URL == "" || len(req.Events) == 0 {
				return usagef("create needs --url and at least one --event (%s)", strings.Join(client.WebhookEvents, ", "))
			}
			if err := checkEvents(req.Events); err != nil {
				return err
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			w, err := c.CreateWebhook(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("create webhook: %w", err)
			}
			f := outputFormat(cmd)
			if err := render(cmd.OutOrStdout(), f, w, func() *table { return webhooksTable([]client.Webhook{w.Webhook}) }); err != nil {
				return err
			}
			if f == formatTable {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "signing secret (shown once, store it now): %s\n", w.Secret)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&req.URL, "url", "", "https URL that receives the events")
	cmd.Flags().StringArrayVar(&req.Events, "event", nil, "event type to send (repeatable): "+strings.Join(client.WebhookEvents, ", "))
	cmd.Flags().StringVar(&req.Description, "description", "", "what the webhook is for")
	_ = cmd.RegisterFlagCompletionFunc("event", cobra.FixedCompletions(client.WebhookEvents, cobra.ShellCompDirectiveNoFileComp))
	outputFlag(cmd)
	return cmd
}

func webhooksUpdateCmd(api *apiFlags) *cobra.Command {
	var (
		u, desc string
		events  []string
		enabled bool
	)
	cmd := &cobra.Command{
		Use:     "update ID",
		Short:   "Change a webhook (only the flags given change); --enabled=true closes an opened circuit",
		Example: "  mpegflow webhooks update 0192… --enabled=true",
		Args:    args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			var p client.WebhookPatch
			fl := cmd.Flags()
			if fl.Changed("url") {
				p.URL = &u
			}
			if fl.Changed("description") {
				p.Description = &desc
			}
			if fl.Changed("event") {
				if err := checkEvents(events); err != nil {
					return err
				}
				p.Events = events
			}
			if fl.Changed("enabled") {
				p.Enabled = &enabled
			}
			if p.URL == nil && p.Description == nil && p.Events == nil && p.Enabled == nil {
				return usagef("nothing to update: give at least one of --url, --description, --event, --enabled")
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			w, err := c.UpdateWebhook(cmd.Context(), a[0], p)
			if err != nil {
				return fmt.Errorf("update webhook %s: %w", a[0], err)
			}
			return render(cmd.OutOrStdout(), outputFormat(cmd), w, func() *table { return webhooksTable([]client.Webhook{w}) })
		},
	}
	cmd.Flags().StringVar(&u, "url", "", "new https URL")
	cmd.Flags().StringVar(&desc, "description", "", "new description")
	cmd.Flags().StringArrayVar(&events, "event", nil, "event types, replacing the current ones (repeatable)")
	cmd.Flags().BoolVar(&enabled, "enabled", false, "enable (closing an opened circuit) or disable the webhook")
	_ = cmd.RegisterFlagCompletionFunc("event", cobra.FixedCompletions(client.WebhookEvents, cobra.ShellCompDirectiveNoFileComp))
	outputFlag(cmd)
	return cmd
}

func webhooksDeleteCmd(api *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a webhook",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			if err := c.DeleteWebhook(cmd.Context(), a[0]); err != nil {
				return fmt.Errorf("delete webhook %s: %w", a[0], err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "webhook %s deleted\n", a[0])
			return err
		},
	}
}

func deliveriesTable(ds []client.WebhookDelivery) *table {
	t := &table{header: []string{"ID", "EVENT", "STATUS", "ATTEMPTS", "CODE", "LATENCY", "AGE", "ERROR"}}
	now := time.Now()
	for _, d := range ds {
		code, latency := "", ""
		if d.LastStatusCode != nil {
			code = fmt.Sprint(*d.LastStatusCode)
		}
		if d.LatencyMS != nil {
			latency = (time.Duration(*d.LatencyMS) * time.Millisecond).String()
		}
		t.add(d.ID, d.EventType, d.Status, fmt.Sprint(d.Attempts), code, latency, age(d.CreatedAt, now), deref(d.LastError))
	}
	return t
}

func webhooksDeliveriesCmd(api *apiFlags) *cobra.Command {
	var (
		status, cursor string
		limit          int
		all            bool
	)
	cmd := &cobra.Command{
		Use:   "deliveries ID",
		Short: "A webhook's delivery log, newest first: status, attempts, answer code, latency, error",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			if status != "" && status != "pending" && status != "delivered" && status != "failed" {
				return usagef("--status must be pending, delivered or failed, not %q", status)
			}
			if limit < 0 || limit > 200 {
				return usagef("--limit must be from 1 to 200")
			}
			c, err := api.client()
			if err != nil {
				return err
			}
			page, err := collect(cmd.Context(), all, cursor, func(ctx context.Context, cur string) (client.Page[client.WebhookDelivery], error) {
				return c.ListDeliveries(ctx, a[0], status, limit, cur)
			})
			if err != nil {
				return fmt.Errorf("list deliveries of webhook %s: %w", a[0], err)
			}
			return renderPage(cmd, page, func() *table { return deliveriesTable(page.Items) })
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only deliveries in this state: pending, delivered or failed")
	cmd.Flags().IntVar(&limit, "limit", 0, "deliveries per page, 1 to 200 (default 50)")
	cmd.Flags().StringVar(&cursor, "cursor", "", "continue after a previous page (its next_cursor)")
	cmd.Flags().BoolVar(&all, "all", false, "follow every page to the end")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions([]string{"pending", "delivered", "failed"}, cobra.ShellCompDirectiveNoFileComp))
	outputFlag(cmd)
	return cmd
}

func webhooksRedeliverCmd(api *apiFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "redeliver WEBHOOK-ID DELIVERY-ID",
		Short: "Send a delivery again (same event id) with a fresh retry budget",
		Args:  args(2, 2),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			d, err := c.Redeliver(cmd.Context(), a[0], a[1])
			if err != nil {
				return fmt.Errorf("redeliver %s of webhook %s: %w", a[1], a[0], err)
			}
			return render(cmd.OutOrStdout(), outputFormat(cmd), d, func() *table { return deliveriesTable([]client.WebhookDelivery{d}) })
		},
	}
	outputFlag(cmd)
	return cmd
}
