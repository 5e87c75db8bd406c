package remote

import (
	"encoding/json"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// DocumentType returns the media type of body, a manifest or an index,
// checked against what others claim it is: the Content-Type of the
// registry's answer, the descriptor that named it (an index entry, an
// image's target). Only the body is covered by its digest, so the kind
// (index or manifest) comes from the body alone: its mediaType field, else
// its structure ("manifests" makes an index, "config" or "layers" a
// manifest). Refused, with an error of kind ErrInvalidArgument: a body
// with both "manifests" and "config" or "layers", whatever its mediaType
// (the ambiguous document of GHSA-5j5w-g665-5m35, which one digest would
// let unpack as two images); a mediaType that disagrees with the structure
// or with a claim. A claim agrees when it is of the same kind: the Docker
// and OCI media types of a kind are taken as equivalent. A claim that is
// neither a manifest nor an index type (none, "application/json") is not
// compared. Without a mediaType field the result is the first claim of the
// body's kind, else the OCI media type of that kind.
func DocumentType(body []byte, claims ...string) (string, error) {
	var doc struct {
		MediaType string          `json:"mediaType"`
		Config    json.RawMessage `json:"config"`
		Layers    json.RawMessage `json:"layers"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("parse: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	index, manifest := present(doc.Manifests), present(doc.Config) || present(doc.Layers)
	switch {
	case index && manifest:
		return "", fmt.Errorf("ambiguous document: has manifests (an index) and config or layers (a manifest): %w", errdefs.ErrInvalidArgument)
	case doc.MediaType != "" && !IsIndex(doc.MediaType) && !IsManifest(doc.MediaType):
		return "", fmt.Errorf("media type %q unsupported: %w", doc.MediaType, errdefs.ErrNotImplemented)
	case doc.MediaType == "" && !index && !manifest:
		return "", fmt.Errorf("no mediaType, manifests, config or layers (claimed %q): %w", claims, errdefs.ErrNotImplemented)
	case IsIndex(doc.MediaType) && manifest, IsManifest(doc.MediaType) && index:
		return "", fmt.Errorf("mediaType %q does not match the document's structure: %w", doc.MediaType, errdefs.ErrInvalidArgument)
	}
	mt := doc.MediaType
	if mt == "" {
		index = !manifest
	} else {
		index = IsIndex(mt)
	}
	for _, c := range claims {
		if !IsIndex(c) && !IsManifest(c) {
			continue
		}
		if IsIndex(c) != index {
			body := "a manifest"
			if index {
				body = "an index"
			}
			return "", fmt.Errorf("claimed %q but the document is %s (mediaType %q): %w", c, body, doc.MediaType, errdefs.ErrInvalidArgument)
		}
		if mt == "" {
			mt = c
		}
	}
	switch {
	case mt != "":
	case index:
		mt = ocispec.MediaTypeImageIndex
	default:
		mt = ocispec.MediaTypeImageManifest
	}
	return mt, nil
}

// present reports whether a JSON field was given a value other than null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
}
