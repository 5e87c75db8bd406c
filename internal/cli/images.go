package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/client"
)

// imageJSON is the stable JSON form of an image (images --format json).
type imageJSON struct {
	Name      string            `json:"name"`
	Digest    string            `json:"digest"`
	MediaType string            `json:"mediaType"`
	Size      int64             `json:"size"`
	CreatedAt *time.Time        `json:"createdAt,omitempty"`
	UpdatedAt *time.Time        `json:"updatedAt,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

func toImageJSON(img *gantryv1.Image) imageJSON {
	return imageJSON{
		Name:      img.GetName(),
		Digest:    img.GetTarget().GetDigest(),
		MediaType: img.GetTarget().GetMediaType(),
		Size:      img.GetSize(),
		CreatedAt: timeOrZero(img.GetCreatedAt()),
		UpdatedAt: timeOrZero(img.GetUpdatedAt()),
		Labels:    img.GetLabels(),
	}
}

func newImagesCommand(a *app) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "images [flags]",
		Short: "List the images of the namespace",
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
			imgs, err := c.ListImages(cmd.Context())
			if err != nil {
				return err
			}
			sort.Slice(imgs, func(i, j int) bool { return imgs[i].GetName() < imgs[j].GetName() })
			switch {
			case format == "json":
				out := make([]imageJSON, 0, len(imgs))
				for _, img := range imgs {
					out = append(out, toImageJSON(img))
				}
				return writeJSON(a.stdio.Out, out)
			case quiet:
				for _, img := range imgs {
					fmt.Fprintln(a.stdio.Out, img.GetName())
				}
				return nil
			}
			now := time.Now()
			rows := make([][]string, 0, len(imgs))
			for _, img := range imgs {
				rows = append(rows, []string{img.GetName(), shortDigest(img.GetTarget().GetDigest()), humanSize(img.GetSize()), ago(img.GetCreatedAt(), now)})
			}
			return table(a.stdio.Out, []string{"NAME", "DIGEST", "SIZE", "CREATED"}, rows)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "output format: table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the names")
	return cmd
}

func newRmiCommand(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [flags] NAME...",
		Short: "Remove images, then collect the garbage they leave",
		Args:  args(1, -1, "at least one image name"),
		RunE: func(cmd *cobra.Command, names []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			del := c.DeleteImage
			if force {
				del = c.ForceDeleteImage
			}
			var errs []error
			var reclaimed int64
			for _, name := range names {
				n, err := del(cmd.Context(), name)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				reclaimed += n
				fmt.Fprintf(a.stdio.Out, "deleted: %s\n", name)
			}
			fmt.Fprintf(a.stdio.Out, "reclaimed: %s\n", humanSize(reclaimed))
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove the name even while containers use it (they keep running and starting)")
	return cmd
}

func newTagCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give an image a second name",
		Args:  args(2, 2, "SOURCE and TARGET"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.TagImage(cmd.Context(), argv[0], argv[1])
			return err
		},
	}
}

// inspectJSON is what inspect prints for one image.
type inspectJSON struct {
	imageJSON
	Target             *descriptorJSON `json:"target"`
	ManifestDescriptor *descriptorJSON `json:"manifestDescriptor,omitempty"`
	Manifest           json.RawMessage `json:"manifest,omitempty"`
	Config             json.RawMessage `json:"config,omitempty"`
}

type descriptorJSON struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func toDescriptorJSON(d *gantryv1.Descriptor) *descriptorJSON {
	if d == nil || d.GetDigest() == "" {
		return nil
	}
	return &descriptorJSON{MediaType: d.GetMediaType(), Digest: d.GetDigest(), Size: d.GetSize(), Annotations: d.GetAnnotations()}
}

// rawJSON keeps b as JSON when it is valid, else drops it.
func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 || !json.Valid(b) {
		return nil
	}
	return b
}

func newInspectCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME...",
		Short: "Show containers, or images with their manifest and config, as JSON",
		Args:  args(1, -1, "at least one container or image name"),
		RunE: func(cmd *cobra.Command, names []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			out := []any{}
			var errs []error
			for _, name := range names {
				ctr, cerr := c.Container(cmd.Context(), name)
				if cerr == nil {
					out = append(out, containerInspectJSON{containerJSON: toContainerJSON(ctr), Spec: rawJSON(ctr.GetSpec())})
					continue
				}
				resp, err := c.GetImage(cmd.Context(), name)
				if err != nil {
					switch {
					case errors.Is(err, client.ErrNotFound) && errors.Is(cerr, client.ErrNotFound):
						// As docker's "No such object": the name is neither.
						err = fmt.Errorf("no such container or image: %s: %w", name, client.ErrNotFound)
					case errors.Is(err, client.ErrNotFound):
						err = cerr // what was wrong with it as a container (an ambiguous id prefix, ...)
					}
					errs = append(errs, err)
					continue
				}
				out = append(out, inspectJSON{
					imageJSON:          toImageJSON(resp.GetImage()),
					Target:             toDescriptorJSON(resp.GetImage().GetTarget()),
					ManifestDescriptor: toDescriptorJSON(resp.GetManifestDescriptor()),
					Manifest:           rawJSON(resp.GetManifest()),
					Config:             rawJSON(resp.GetConfig()),
				})
			}
			if err := writeJSON(a.stdio.Out, out); err != nil {
				return err
			}
			return errors.Join(errs...)
		},
	}
}

func newImportCommand(a *app) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "import [flags] FILE|-",
		Short: "Import an OCI image layout or docker-save tarball",
		Args:  args(1, 1, "a tar file, or - for stdin"),
		RunE: func(cmd *cobra.Command, argv []string) error {
			var r io.Reader = a.stdio.In
			if argv[0] != "-" {
				f, err := os.Open(argv[0])
				if err != nil {
					return fmt.Errorf("import: %w", err)
				}
				defer f.Close()
				r = f
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			imgs, err := c.ImportImages(cmd.Context(), r, name)
			if err != nil {
				return err
			}
			for _, img := range imgs {
				fmt.Fprintf(a.stdio.Out, "imported: %s (%s)\n", img.GetName(), img.GetTarget().GetDigest())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name for an image the tar does not name")
	return cmd
}

func newExportCommand(a *app) *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "export [flags] NAME...",
		Short: "Export images as an OCI image layout (or docker-save) tar",
		Args:  args(1, -1, "at least one image name"),
		RunE: func(cmd *cobra.Command, names []string) error {
			switch format {
			case "oci", "docker":
			default:
				return usageError{fmt.Errorf("--format %q: want oci or docker", format)}
			}
			if output == "" || output == "-" {
				if tty, _ := a.tty(); tty {
					return usageError{errors.New("refusing to write a tar to a terminal: use -o FILE or redirect stdout")}
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if output == "" || output == "-" {
				return c.ExportImages(cmd.Context(), names, format, a.stdio.Out)
			}
			f, err := os.OpenFile(output+".partial", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			err = c.ExportImages(cmd.Context(), names, format, f)
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("export: close %s: %w", f.Name(), cerr)
			}
			if err == nil {
				err = os.Rename(f.Name(), output)
			}
			if err != nil {
				os.Remove(f.Name())
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default stdout)")
	cmd.Flags().StringVar(&format, "format", "oci", "oci or docker")
	return cmd
}
