package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/mpegflow/mpegflow/client"
	"github.com/mpegflow/mpegflow/internal/validation"
)

func assetsCmd() *cobra.Command {
	var api apiFlags
	cmd := apiGroup("assets", "Upload, list, show and download source files", &api)
	cmd.AddCommand(assetsUploadCmd(&api), assetsListCmd(&api), assetsGetCmd(&api), assetsDownloadCmd(&api))
	return cmd
}

func assetsTable(as []client.Asset) *table {
	t := &table{header: []string{"ID", "FILENAME", "CONTENT-TYPE", "SIZE", "AGE"}}
	now := time.Now()
	for _, a := range as {
		size := ""
		if a.SizeBytes != nil {
			size = bytesize(*a.SizeBytes)
		}
		t.add(a.ID, a.Filename, a.ContentType, size, age(a.CreatedAt, now))
	}
	return t
}

func assetsUploadCmd(api *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "upload FILE",
		Short: "Upload a source file and print its asset id (large files go up in parts; run it again to resume an interrupted upload)",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			f, err := os.Open(a[0])
			if err != nil {
				return fmt.Errorf("upload: %w", err)
			}
			defer f.Close() //nolint:errcheck // opened read-only: closing loses nothing
			id, err := uploadResumable(cmd.Context(), c, f, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
}

func assetsListCmd(api *apiFlags) *cobra.Command {
	return pagedListCmd(api, "List assets, newest first", "assets",
		func(c *client.Client, ctx context.Context, limit int, cursor string) (client.Page[client.Asset], error) {
			return c.ListAssets(ctx, limit, cursor)
		}, assetsTable)
}

func assetsGetCmd(api *apiFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show an asset (-o json or yaml includes a presigned download URL)",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			as, err := c.GetAsset(cmd.Context(), a[0])
			if err != nil {
				return fmt.Errorf("get asset %s: %w", a[0], err)
			}
			return render(cmd.OutOrStdout(), outputFormat(cmd), as, func() *table { return assetsTable([]client.Asset{as}) })
		},
	}
	outputFlag(cmd)
	return cmd
}

func assetsDownloadCmd(api *apiFlags) *cobra.Command {
	var dst string
	cmd := &cobra.Command{
		Use:   "download ID",
		Short: "Download an asset's file (default: its filename in the current directory; '-o -' writes stdout)",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := api.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			as, err := c.GetAsset(ctx, a[0])
			if err != nil {
				return fmt.Errorf("get asset %s: %w", a[0], err)
			}
			if as.Download == nil {
				return fmt.Errorf("asset %s: the server gave no download URL", a[0])
			}
			if dst == "-" {
				if _, err := c.Fetch(ctx, as.Download.URL, cmd.OutOrStdout()); err != nil {
					return fmt.Errorf("download asset %s: %w", a[0], err)
				}
				return nil
			}
			if dst == "" {
				// The server refuses such names, but the name comes from
				// the server: one that is not a plain name in this
				// directory (or one this system reserves) is not used.
				if problem := validation.FilenameProblem(as.Filename); problem != "" || !filepath.IsLocal(as.Filename) {
					return fmt.Errorf("asset %s has filename %q, which is no plain file name here; choose one with -o FILE", a[0], as.Filename)
				}
				dst = as.Filename
			}
			n, err := downloadFile(ctx, c, as.Download.URL, dst, deref(as.SizeBytes), cmd.ErrOrStderr())
			if err != nil {
				return fmt.Errorf("download asset %s: %w", a[0], err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), dst)
			fmt.Fprintf(cmd.ErrOrStderr(), "%s saved to %s\n", bytesize(n), dst)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dst, "output", "o", "", "file to write (default: the asset's filename; '-' writes stdout)")
	return cmd
}

// downloadFile saves a presigned GET as dst, with a progress bar on errw
// when it is a terminal; the file appears complete or not at all.
func downloadFile(ctx context.Context, c *client.Client, url, dst string, size int64, errw io.Writer) (int64, error) {
	if !isTerminal(errw) || size <= 0 {
		return c.Download(ctx, url, dst)
	}
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".*.part")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // best effort: on success the file was renamed away, on failure the error that matters is returned
	bar := byteBar(errw, size, "downloading "+filepath.Base(dst))
	defer bar.Close()
	n, err := c.Fetch(ctx, url, io.MultiWriter(tmp, bar))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	return n, err
}
