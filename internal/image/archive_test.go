package image

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type ocispecPlatform = ocispec.Platform

// rewriteTar copies a tar, letting fn drop (return nil) or change entries.
func rewriteTar(t *testing.T, in []byte, fn func(hdr *tar.Header, data []byte) []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tr := tar.NewReader(bytes.NewReader(in))
	tw := tar.NewWriter(&out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		data = fn(hdr, data)
		if data == nil {
			continue
		}
		hdr.Size = int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func stripEntries(t *testing.T, in []byte, names ...string) []byte {
	return rewriteTar(t, in, func(hdr *tar.Header, data []byte) []byte {
		for _, n := range names {
			if hdr.Name == n {
				return nil
			}
		}
		return data
	})
}

func corruptBlob(t *testing.T, in []byte) []byte {
	done := false
	return rewriteTar(t, in, func(hdr *tar.Header, data []byte) []byte {
		if !done && strings.HasPrefix(hdr.Name, "blobs/") && len(data) > 0 {
			done = true
			data = append([]byte(nil), data...)
			data[len(data)-1] ^= 0xff
		}
		return data
	})
}
