package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/spec"
)

func newSpec(g *globals) *cobra.Command {
	var bundle string
	var rootless bool
	cmd := &cobra.Command{
		Use:   "spec",
		Short: "write a default config.json into the bundle",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s := spec.Example()
			if rootless {
				spec.ToRootless(s, os.Geteuid(), os.Getegid())
			}
			path := filepath.Join(bundle, "config.json")
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s exists: remove it first: %w", path, errdefs.ErrAlreadyExists)
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			data, err := json.MarshalIndent(s, "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(path, append(data, '\n'), 0o666)
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "bundle directory")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "a spec for a rootless container")
	return cmd
}

func newFeatures(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "features",
		Short: "print the runtime-spec features document",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "    ")
			return enc.Encode(spec.Features())
		},
	}
}
