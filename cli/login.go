package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/cliconfig"
)

func loginCmd() *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "login --server URL [--context NAME]",
		Short: "Check an API key against a server and save both as a CLI context",
		Long: "login reads the API key from $MPEGFLOW_API_KEY, else from standard input (a prompt that does\n" +
			"not echo on a terminal, the first line otherwise) — never from a flag, which shell history\n" +
			"would keep. It checks the key with the server (GET /v1/organization), then stores server and\n" +
			"key as the context NAME (default: the server's host:port) in the CLI configuration file\n" +
			"(mode 0600) and makes it current.",
		Example: "  mpegflow login --server https://mpegflow.example.com --context prod\n" +
			"  pass show mpegflow/prod | mpegflow login --server https://mpegflow.example.com --context prod",
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" {
				return usagef("login needs --server URL")
			}
			u, err := url.Parse(server)
			if err != nil || u.Host == "" {
				return usagef("--server %q must be an absolute http:// or https:// URL", server)
			}
			name := cmd.Flag("context").Value.String()
			if name == "" {
				name = u.Host
			}
			key, err := readAPIKey(cmd)
			if err != nil {
				return err
			}
			c, err := client.New(server, key, client.Config{UserAgent: "mpegflow-cli"})
			if err != nil {
				return err
			}
			org, err := c.GetOrganization(cmd.Context())
			if err != nil {
				return fmt.Errorf("check the API key with %s: %w", server, err)
			}
			path, err := cliconfig.Path(os.Getenv)
			if err != nil {
				return err
			}
			if err := cliconfig.SetCurrent(path, name, cliconfig.Context{Server: c.Server(), APIKey: key}); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "Logged in to %q at %s; context %q is current (%s)\n", org.Name, c.Server(), name, path)
			return err
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "MpegFlow server URL, such as https://mpegflow.example.com")
	return cmd
}

// readAPIKey takes the key from $MPEGFLOW_API_KEY, else prompts for it
// without echo on a terminal, else reads standard input's first line.
func readAPIKey(cmd *cobra.Command) (string, error) {
	if k := strings.TrimSpace(os.Getenv("MPEGFLOW_API_KEY")); k != "" {
		return k, nil
	}
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if _, err := fmt.Fprint(cmd.ErrOrStderr(), "API key: "); err != nil {
			return "", fmt.Errorf("prompt for the API key: %w", err)
		}
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("read the API key: %w", err)
		}
		return nonEmptyKey(string(b))
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the API key from standard input: %w", err)
	}
	return nonEmptyKey(line)
}

func nonEmptyKey(s string) (string, error) {
	if k := strings.TrimSpace(s); k != "" {
		return k, nil
	}
	return "", usagef("no API key: set MPEGFLOW_API_KEY or give it on standard input")
}
