package cli

import (
	"fmt"
	"runtime"
	"sort"

	"github.com/spf13/cobra"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
)

// diskUsageJSON is the stable JSON form of system df.
type diskUsageJSON struct {
	ContentBytes     int64 `json:"contentBytes"`
	SnapshotBytes    int64 `json:"snapshotBytes"`
	ReclaimableBytes int64 `json:"reclaimableBytes"`
	Images           []struct {
		Name       string `json:"name"`
		Size       int64  `json:"size"`
		UniqueSize int64  `json:"uniqueSize"`
	} `json:"images"`
	Blobs []struct {
		Digest     string `json:"digest"`
		Size       int64  `json:"size"`
		Referenced bool   `json:"referenced"`
	} `json:"blobs"`
	Snapshots []struct {
		Key        string `json:"key"`
		Size       int64  `json:"size"`
		Inodes     int64  `json:"inodes"`
		Referenced bool   `json:"referenced"`
	} `json:"snapshots"`
}

func toDiskUsageJSON(du *gantryv1.DiskUsageResponse) diskUsageJSON {
	var out diskUsageJSON
	out.ContentBytes, out.SnapshotBytes, out.ReclaimableBytes = du.GetContentBytes(), du.GetSnapshotBytes(), du.GetReclaimableBytes()
	out.Images = make([]struct {
		Name       string `json:"name"`
		Size       int64  `json:"size"`
		UniqueSize int64  `json:"uniqueSize"`
	}, len(du.GetImages()))
	for i, im := range du.GetImages() {
		out.Images[i].Name, out.Images[i].Size, out.Images[i].UniqueSize = im.GetName(), im.GetSize(), im.GetUniqueSize()
	}
	out.Blobs = make([]struct {
		Digest     string `json:"digest"`
		Size       int64  `json:"size"`
		Referenced bool   `json:"referenced"`
	}, len(du.GetBlobs()))
	for i, b := range du.GetBlobs() {
		out.Blobs[i].Digest, out.Blobs[i].Size, out.Blobs[i].Referenced = b.GetDigest(), b.GetSize(), b.GetReferenced()
	}
	out.Snapshots = make([]struct {
		Key        string `json:"key"`
		Size       int64  `json:"size"`
		Inodes     int64  `json:"inodes"`
		Referenced bool   `json:"referenced"`
	}, len(du.GetSnapshots()))
	for i, s := range du.GetSnapshots() {
		out.Snapshots[i].Key, out.Snapshots[i].Size, out.Snapshots[i].Inodes, out.Snapshots[i].Referenced = s.GetKey(), s.GetSize(), s.GetInodes(), s.GetReferenced()
	}
	return out
}

func newDiskUsageCommand(a *app) *cobra.Command {
	var format string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "df [flags]",
		Short: "Show exact disk usage per image, blob and snapshot",
		Args:  args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			du, err := c.DiskUsage(cmd.Context())
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(a.stdio.Out, toDiskUsageJSON(du))
			}
			var refBlobs, refSnaps int
			var reclaimBlobs, reclaimSnaps int64
			for _, b := range du.GetBlobs() {
				if b.GetReferenced() {
					refBlobs++
				} else {
					reclaimBlobs += b.GetSize()
				}
			}
			for _, s := range du.GetSnapshots() {
				if s.GetReferenced() {
					refSnaps++
				} else {
					reclaimSnaps += s.GetSize()
				}
			}
			var imgBytes int64
			for _, im := range du.GetImages() {
				imgBytes += im.GetUniqueSize()
			}
			if err := table(a.stdio.Out, []string{"TYPE", "TOTAL", "REFERENCED", "SIZE", "RECLAIMABLE"}, [][]string{
				{"Images", fmt.Sprint(len(du.GetImages())), fmt.Sprint(len(du.GetImages())), humanSize(imgBytes) + " unique", "-"},
				{"Blobs", fmt.Sprint(len(du.GetBlobs())), fmt.Sprint(refBlobs), humanSize(du.GetContentBytes()), humanSize(reclaimBlobs)},
				{"Snapshots", fmt.Sprint(len(du.GetSnapshots())), fmt.Sprint(refSnaps), humanSize(du.GetSnapshotBytes()), humanSize(reclaimSnaps)},
			}); err != nil {
				return err
			}
			fmt.Fprintf(a.stdio.Out, "\ntotal: %s (%d bytes), reclaimable: %s (%d bytes)\n",
				humanSize(du.GetContentBytes()+du.GetSnapshotBytes()), du.GetContentBytes()+du.GetSnapshotBytes(),
				humanSize(du.GetReclaimableBytes()), du.GetReclaimableBytes())
			if !verbose {
				return nil
			}
			var rows [][]string
			for _, im := range du.GetImages() {
				rows = append(rows, []string{im.GetName(), fmt.Sprint(im.GetSize()), fmt.Sprint(im.GetUniqueSize())})
			}
			fmt.Fprintln(a.stdio.Out)
			if err := table(a.stdio.Out, []string{"IMAGE", "BYTES", "UNIQUE BYTES"}, rows); err != nil {
				return err
			}
			rows = nil
			for _, b := range du.GetBlobs() {
				rows = append(rows, []string{b.GetDigest(), fmt.Sprint(b.GetSize()), fmt.Sprint(b.GetReferenced())})
			}
			fmt.Fprintln(a.stdio.Out)
			if err := table(a.stdio.Out, []string{"BLOB", "BYTES", "REFERENCED"}, rows); err != nil {
				return err
			}
			rows = nil
			for _, s := range du.GetSnapshots() {
				rows = append(rows, []string{s.GetKey(), fmt.Sprint(s.GetSize()), fmt.Sprint(s.GetInodes()), fmt.Sprint(s.GetReferenced())})
			}
			fmt.Fprintln(a.stdio.Out)
			return table(a.stdio.Out, []string{"SNAPSHOT", "BYTES", "INODES", "REFERENCED"}, rows)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "output format: table or json")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list every image, blob and snapshot")
	return cmd
}

func newPruneCommand(a *app) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "prune [flags]",
		Short: "Remove every blob and snapshot that nothing references",
		Args:  args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			r, err := c.Prune(cmd.Context(), all)
			if err != nil {
				return err
			}
			for _, d := range r.GetRemovedBlobs() {
				fmt.Fprintf(a.stdio.Out, "removed blob: %s\n", d)
			}
			for _, k := range r.GetRemovedSnapshots() {
				fmt.Fprintf(a.stdio.Out, "removed snapshot: %s\n", k)
			}
			fmt.Fprintf(a.stdio.Out, "reclaimed: %s\n", humanSize(r.GetReclaimedBytes()))
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also remove unfinished downloads, whatever their age")
	return cmd
}

func newCheckCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Verify every blob's digest and find orphans",
		Long: `Verify every blob's digest and find orphans: unreferenced blobs and
snapshots, unfinished ingests, snapshots without their parent, mounts left
below the root. Exits 1 when it finds a problem.`,
		Args: args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			r, err := c.Check(cmd.Context())
			if err != nil {
				return err
			}
			problems := r.GetProblems()
			sort.SliceStable(problems, func(i, j int) bool { return problems[i].GetKind() < problems[j].GetKind() })
			for _, p := range problems {
				fmt.Fprintf(a.stdio.Out, "%s %s: %s\n", p.GetKind(), p.GetSubject(), p.GetMessage())
			}
			fmt.Fprintf(a.stdio.Out, "checked %d blobs and %d snapshots: %d problem(s)\n", r.GetBlobsChecked(), r.GetSnapshotsChecked(), len(problems))
			if len(problems) > 0 {
				return fmt.Errorf("system check: %d problem(s) found", len(problems))
			}
			return nil
		},
	}
}

func newVersionCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the versions of gantry and gantryd",
		Args:  args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(a.stdio.Out, "client: %s (%s)\n", Version, runtime.Version())
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			v, err := c.Version(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdio.Out, "server: %s (%s)\n", v.GetVersion(), v.GetGoVersion())
			return nil
		},
	}
}

func newInfoCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show where gantryd keeps its data and what it runs with",
		Args:  args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			i, err := c.Info(cmd.Context())
			if err != nil {
				return err
			}
			return table(a.stdio.Out, []string{"KEY", "VALUE"}, [][]string{
				{"address", i.GetAddress()}, {"root", i.GetRoot()}, {"state", i.GetState()},
				{"snapshotter", i.GetSnapshotter()}, {"pid", fmt.Sprint(i.GetPid())}, {"namespace", c.Namespace()},
			})
		},
	}
}
