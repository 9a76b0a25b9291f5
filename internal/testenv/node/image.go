package node

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime"
	"strings"
	"time"
)

// OCI media types and annotations of the archive. containerd names the
// imported image after io.containerd.image.name; other tools read the OCI
// ref.name, which holds the tag alone.
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"

	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// Image is a one-layer OCI image that holds a single static executable,
// which is also its entrypoint: everything a pod sandbox or a smoke-test
// container needs, and nothing a registry has to provide.
type Image struct {
	// Name is the full reference containerd stores the image under, with a
	// tag: "localhost/mpegflow/pause:3f2a9c0d1e2b". The pinned sandbox image
	// in containerd's configuration must be this string.
	Name string
	// Path is the executable's absolute path in the image ("/pause").
	Path string
	// Executable is the program, statically linked: the image has no libc.
	Executable []byte
}

func (img Image) validate() error {
	var errs []error
	slash := strings.LastIndex(img.Name, "/")
	if img.Name == "" || !strings.Contains(img.Name[slash+1:], ":") {
		errs = append(errs, fmt.Errorf("image name %q needs a tag (name:tag)", img.Name))
	}
	if !path.IsAbs(img.Path) || path.Clean(img.Path) != img.Path || img.Path == "/" {
		errs = append(errs, fmt.Errorf("executable path %q must be a clean absolute file path", img.Path))
	}
	if len(img.Executable) == 0 {
		errs = append(errs, errors.New("executable is empty"))
	}
	return errors.Join(errs...)
}

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Entrypoint []string `json:"Entrypoint"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// epoch is every timestamp in the archive, so that the same Image always
// gives the same bytes and the same digests.
var epoch = time.Unix(0, 0).UTC()

// WriteArchive writes img to w as an OCI image layout in a tar stream, the
// form `ctr images import` reads. The image is for this machine's
// architecture (the executable is built here). The output depends only on
// img: the same program gives the same image digest on every run.
func (img Image) WriteArchive(w io.Writer) error {
	if err := img.validate(); err != nil {
		return fmt.Errorf("image %s: %w", img.Name, err)
	}
	layerTar, err := singleFileTar(strings.TrimPrefix(img.Path, "/"), img.Executable)
	if err != nil {
		return fmt.Errorf("image %s: layer: %w", img.Name, err)
	}
	var layer bytes.Buffer
	zw := gzip.NewWriter(&layer) // zero header time and no name: deterministic
	if _, err := zw.Write(layerTar); err != nil {
		return fmt.Errorf("image %s: compress layer: %w", img.Name, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("image %s: compress layer: %w", img.Name, err)
	}

	var cfg imageConfig
	cfg.Architecture, cfg.OS = runtime.GOARCH, "linux"
	cfg.Config.Entrypoint = []string{img.Path}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []string{digest(layerTar)}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("image %s: config: %w", img.Name, err)
	}
	man := manifest{
		SchemaVersion: 2,
		MediaType:     mediaTypeManifest,
		Config:        describe(mediaTypeConfig, cfgJSON),
		Layers:        []descriptor{describe(mediaTypeLayer, layer.Bytes())},
	}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return fmt.Errorf("image %s: manifest: %w", img.Name, err)
	}
	manDesc := describe(mediaTypeManifest, manJSON)
	manDesc.Platform = &platform{Architecture: cfg.Architecture, OS: cfg.OS}
	manDesc.Annotations = map[string]string{
		annotationContainerdName: img.Name,
		annotationRefName:        img.Name[strings.LastIndex(img.Name, ":")+1:],
	}
	idxJSON, err := json.Marshal(index{SchemaVersion: 2, MediaType: mediaTypeIndex, Manifests: []descriptor{manDesc}})
	if err != nil {
		return fmt.Errorf("image %s: index: %w", img.Name, err)
	}

	tw := tar.NewWriter(w)
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", idxJSON},
		{blobPath(manJSON), manJSON},
		{blobPath(cfgJSON), cfgJSON},
		{blobPath(layer.Bytes()), layer.Bytes()},
	}
	for _, f := range files {
		if err := writeFile(tw, f.name, 0o644, f.data); err != nil {
			return fmt.Errorf("image %s: archive: %w", img.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("image %s: archive: %w", img.Name, err)
	}
	return nil
}

// singleFileTar is a layer holding one executable owned by root.
func singleFileTar(name string, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := writeFile(tw, name, 0o755, data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeFile(tw *tar.Writer, name string, mode int64, data []byte) error {
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     mode,
		Size:     int64(len(data)),
		ModTime:  epoch,
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("tar header %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("tar write %s: %w", name, err)
	}
	return nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func describe(mediaType string, b []byte) descriptor {
	return descriptor{MediaType: mediaType, Digest: digest(b), Size: int64(len(b))}
}

func blobPath(b []byte) string {
	return "blobs/sha256/" + strings.TrimPrefix(digest(b), "sha256:")
}
