package encodespec

import (
	"slices"

	"github.com/mpegflow/mpegflow/internal/validation"
)

// Encryption asks for the segments of every video and audio rendition to be
// encrypted with a content key MpegFlow generates for the job and serves
// only to the job's organization (GET /v1/jobs/{id}/key, and a W3C ClearKey
// license at POST /v1/jobs/{id}/clearkey). Subtitles, thumbnails, posters
// and storyboards stay clear.
type Encryption struct {
	// Method is one of:
	//   - "aes-128": HLS only; every media segment is encrypted whole with
	//     AES-128-CBC (METHOD=AES-128, a random IV per segment), which every
	//     HLS player supports;
	//   - "sample-aes": the samples inside the fMP4 segments are encrypted
	//     with Common Encryption's cbcs scheme (HLS METHOD=SAMPLE-AES; DASH
	//     ContentProtection "cbcs"), as FairPlay-era players expect;
	//   - "cenc": Common Encryption's cenc scheme (AES-CTR), the DASH and
	//     EME default, with ClearKey signalling in the MPD (HLS playlists of
	//     the CMAF packaging say METHOD=SAMPLE-AES-CTR).
	Method string `json:"method"`
}

// Encryption methods.
const (
	EncryptAES128    = "aes-128"
	EncryptSampleAES = "sample-aes"
	EncryptCENC      = "cenc"
)

// encryptionPackagings are the packagings each method applies to.
var encryptionPackagings = map[string][]Packaging{
	EncryptAES128:    {PackagingHLS},
	EncryptSampleAES: {PackagingHLS, PackagingDASH, PackagingCMAF},
	EncryptCENC:      {PackagingDASH, PackagingCMAF},
}

var encryptionMethods = []string{EncryptAES128, EncryptSampleAES, EncryptCENC}

// Scheme is the Common Encryption scheme of the method ("cbcs", "cenc"),
// "" for whole-segment AES-128.
func (e Encryption) Scheme() string {
	switch e.Method {
	case EncryptSampleAES:
		return "cbcs"
	case EncryptCENC:
		return "cenc"
	}
	return ""
}

func (e Encryption) validate(errs *validation.Errors, path string, s Spec) {
	allowed, ok := encryptionPackagings[e.Method]
	switch {
	case e.Method == "":
		errs.Add(path+".method", "required: one of %s", list(encryptionMethods))
		return
	case !ok:
		errs.Add(path+".method", "must be one of %s, got %q", list(encryptionMethods), e.Method)
		return
	case len(s.Renditions) == 0:
		errs.Add(path, "encryption applies to renditions; a spec of images only has nothing to encrypt")
		return
	}
	if s.Packaging != "" && slices.Contains(packagings, s.Packaging) && !slices.Contains(allowed, s.Packaging) {
		names := make([]string, len(allowed))
		for i, p := range allowed {
			names[i] = p.String()
		}
		errs.Add(path+".method", "%q needs packaging %s, not %s (an MP4 file is not segmented; AES-128 encrypts whole HLS segments, which DASH cannot signal)",
			e.Method, list(names), s.Packaging.String())
	}
}
