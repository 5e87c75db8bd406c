package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newContentListCommand(a *app) *cobra.Command {
	var quiet bool
	var format string
	cmd := &cobra.Command{
		Use:     "ls [flags]",
		Aliases: []string{"list"},
		Short:   "List the blobs of the content store",
		Args:    args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			blobs, err := c.ListContent(cmd.Context())
			if err != nil {
				return err
			}
			switch {
			case format == "json":
				type blobJSON struct {
					Digest    string     `json:"digest"`
					Size      int64      `json:"size"`
					CreatedAt *time.Time `json:"createdAt,omitempty"`
				}
				out := make([]blobJSON, 0, len(blobs))
				for _, b := range blobs {
					out = append(out, blobJSON{b.GetDigest(), b.GetSize(), timeOrZero(b.GetCreatedAt())})
				}
				return writeJSON(a.stdio.Out, out)
			case quiet:
				for _, b := range blobs {
					fmt.Fprintln(a.stdio.Out, b.GetDigest())
				}
				return nil
			}
			now := time.Now()
			rows := make([][]string, 0, len(blobs))
			for _, b := range blobs {
				rows = append(rows, []string{b.GetDigest(), fmt.Sprint(b.GetSize()), ago(b.GetCreatedAt(), now)})
			}
			return table(a.stdio.Out, []string{"DIGEST", "SIZE", "CREATED"}, rows)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the digests")
	cmd.Flags().StringVar(&format, "format", "", "output format: table or json")
	return cmd
}

func newContentCatCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "cat DIGEST",
		Short: "Write a blob to stdout",
		Args:  args(1, 1, "one digest"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			return c.ReadContent(cmd.Context(), argv[0], a.stdio.Out)
		},
	}
}

func newSnapshotListCommand(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "ls [flags]",
		Aliases: []string{"list"},
		Short:   "List the snapshots",
		Args:    args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			snaps, err := c.ListSnapshots(cmd.Context())
			if err != nil {
				return err
			}
			if format == "json" {
				type snapJSON struct {
					Key       string            `json:"key"`
					Parent    string            `json:"parent,omitempty"`
					Kind      string            `json:"kind"`
					CreatedAt *time.Time        `json:"createdAt,omitempty"`
					Labels    map[string]string `json:"labels,omitempty"`
				}
				out := make([]snapJSON, 0, len(snaps))
				for _, s := range snaps {
					out = append(out, snapJSON{s.GetKey(), s.GetParent(), kindWord(s.GetKind().String()), timeOrZero(s.GetCreatedAt()), s.GetLabels()})
				}
				return writeJSON(a.stdio.Out, out)
			}
			rows := make([][]string, 0, len(snaps))
			for _, s := range snaps {
				parent := s.GetParent()
				if parent == "" {
					parent = "-"
				}
				rows = append(rows, []string{s.GetKey(), parent, kindWord(s.GetKind().String())})
			}
			return table(a.stdio.Out, []string{"KEY", "PARENT", "KIND"}, rows)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "output format: table or json")
	return cmd
}

// kindWord turns SNAPSHOT_KIND_COMMITTED into "committed".
func kindWord(enum string) string {
	return strings.ToLower(strings.TrimPrefix(enum, "SNAPSHOT_KIND_"))
}

func newSnapshotMountsCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "mounts KEY [TARGET]",
		Short: "Print the mount commands that show a snapshot at TARGET (default /mnt)",
		Args:  args(1, 2, "KEY and an optional TARGET"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			target := "/mnt"
			if len(argv) == 2 {
				target = argv[1]
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			mounts, err := c.SnapshotMounts(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			for _, m := range mounts {
				line := fmt.Sprintf("mount -t %s %s %s", m.GetType(), m.GetSource(), target)
				if len(m.GetOptions()) > 0 {
					line += " -o " + strings.Join(m.GetOptions(), ",")
				}
				fmt.Fprintln(a.stdio.Out, line)
			}
			return nil
		},
	}
}
