package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/client"
)

func newPullCommand(a *app) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull [flags] REF",
		Short: "Pull an image from a registry",
		Long: `Pull an image from a registry, unpack it and record it in the namespace.

In a terminal a progress bar per layer shows bytes, total and speed; when
stdout is not a terminal one plain line is printed each time a layer
changes state. --quiet prints only the image's digest.`,
		Args: args(1, 1, "one image reference"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			opts := client.PullOptions{}
			var pp *pullProgress
			if !quiet {
				tty, width := a.tty()
				pp = newPullProgress(a.stdio.Out, tty, width, time.Now)
				opts.Progress = pp.Update
			}
			img, err := c.Pull(cmd.Context(), argv[0], opts)
			if pp != nil {
				pp.Done()
			}
			if err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(a.stdio.Out, img.GetTarget().GetDigest())
				return nil
			}
			fmt.Fprintf(a.stdio.Out, "pulled %s (%s, %s)\n", img.GetName(), img.GetTarget().GetDigest(), humanSize(img.GetSize()))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image digest")
	return cmd
}
