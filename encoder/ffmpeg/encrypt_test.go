package ffmpeg

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// TestEncrypt encrypts real encodes with each method and checks, with
// FFmpeg as the player, that the segments do not decode without the key
// and decode to the very frames of the clear encode with it; and that the
// playlists and the MPD signal the key as players expect.
func TestEncrypt(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		method    string
		packaging encodespec.Packaging
	}{
		"aes-128 hls":     {encodespec.EncryptAES128, encodespec.PackagingHLS},
		"sample-aes hls":  {encodespec.EncryptSampleAES, encodespec.PackagingHLS},
		"sample-aes cmaf": {encodespec.EncryptSampleAES, encodespec.PackagingCMAF},
		"cenc dash":       {encodespec.EncryptCENC, encodespec.PackagingDASH},
		"cenc cmaf":       {encodespec.EncryptCENC, encodespec.PackagingCMAF},
	}
	input := makeClip(t, clip{width: 426, height: 240, seconds: 2.5, audio: true})
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			spec := encodespec.Spec{
				Renditions: []encodespec.Rendition{
					{Codec: encodespec.CodecH264, Height: 240, BitrateKbps: 300, Preset: "ultrafast"},
					{Codec: encodespec.CodecH264, Height: 144, BitrateKbps: 150, Preset: "ultrafast"},
				},
				Audio:          &encodespec.Audio{Codec: encodespec.AudioAAC},
				Packaging:      tt.packaging,
				SegmentSeconds: 1,
				Encryption:     &encodespec.Encryption{Method: tt.method},
			}
			spec.Normalize()
			res := encode(t, spec, input)
			clearDir := t.TempDir()
			require.NoError(t, os.CopyFS(clearDir, os.DirFS(res.cmd.OutDir)))

			p := testProtection(t, tt.method)
			keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(p.Key) }))
			t.Cleanup(keys.Close)
			p.KeyURI = keys.URL + "/v1/jobs/x/key"
			require.NoError(t, Encrypt(res.cmd, res.outputs, p))

			tracks := 0
			for _, o := range res.outputs {
				if _, ok := familyOf(o); !ok {
					continue
				}
				tracks++
				assert.Equal(t, tt.method, o.Attributes[AttrEncryptionMethod], o.Name)
				assert.Equal(t, p.KIDString(), o.Attributes[AttrEncryptionKID], o.Name)
				checkEncryptedTrack(t, res, clearDir, o, p)
			}
			require.Equal(t, 3, tracks, "two video tracks and the audio")
			for _, o := range res.outputs {
				data := readFile(t, res.cmd.OutDir, o.Name)
				require.NotContains(t, data, string(p.Key), "%s holds the key", o.Name)
				require.NotContains(t, strings.ToLower(data), hex.EncodeToString(p.Key), "%s holds the key", o.Name)
			}
			if tt.packaging.HLS() {
				checkEncryptedPlaylists(t, res, p)
			}
			if tt.packaging.DASH() {
				checkProtectedMPD(t, res, p)
			}
			if tt.method == encodespec.EncryptAES128 {
				// A player with the key decodes the whole ladder through
				// the master playlist, fetching the key from its URI.
				require.Equal(t, framesThrough(t, filepath.Join(clearDir, masterPlaylist)),
					framesThrough(t, filepath.Join(res.cmd.OutDir, masterPlaylist), "-protocol_whitelist", "file,crypto,data,http,tcp"))
			}
		})
	}
}

// testProtection is a fresh random key for method.
func testProtection(t *testing.T, method string) Protection {
	p := Protection{Method: method, Key: make([]byte, 16), KeyURI: "https://api.example/v1/jobs/x/key", LicenseURI: "https://api.example/v1/jobs/x/clearkey"}
	_, err := rand.Read(p.Key)
	require.NoError(t, err)
	_, err = rand.Read(p.KID[:])
	require.NoError(t, err)
	return p
}

// checkEncryptedTrack compares each media segment of one track, with its
// init segment, against the clear encode: it must differ, must not decode
// to the clear frames without the key and (Common Encryption) must decode
// to exactly them with it.
func checkEncryptedTrack(t *testing.T, res encodeResult, clearDir string, init Output, p Protection) {
	fam, _ := familyOf(init)
	segments := 0
	for _, o := range res.outputs {
		if o.ContentType != ContentTypeSegment || o.Name == init.Name || !strings.HasPrefix(o.Name, fam.dir+fam.prefix) {
			continue
		}
		segments++
		enc := readFile(t, res.cmd.OutDir, o.Name)
		require.NotEqual(t, readFile(t, clearDir, o.Name), enc, "%s is encrypted", o.Name)

		clearFile := concat(t, readFile(t, clearDir, init.Name), readFile(t, clearDir, o.Name))
		encFile := concat(t, readFile(t, res.cmd.OutDir, init.Name), enc)
		ffmpegBin, _ := binaries(t)
		want, err := frames(ffmpegBin, clearFile)
		require.NoError(t, err)
		got, err := frames(ffmpegBin, encFile)
		require.False(t, err == nil && got == want, "%s decodes without the key", o.Name)
		if p.Method != encodespec.EncryptAES128 {
			got, err = frames(ffmpegBin, encFile, "-decryption_key", hex.EncodeToString(p.Key))
			require.NoError(t, err, o.Name)
			require.Equal(t, want, got, "%s decodes to the clear frames with the key", o.Name)
		}
	}
	require.GreaterOrEqual(t, segments, 2, "%s has segments", init.Name)
	if p.Method == encodespec.EncryptAES128 {
		require.Equal(t, readFile(t, clearDir, init.Name), readFile(t, res.cmd.OutDir, init.Name), "AES-128 leaves the init segment clear")
	} else {
		require.NotEqual(t, readFile(t, clearDir, init.Name), readFile(t, res.cmd.OutDir, init.Name), "the init segment says the track is protected")
	}
}

// checkEncryptedPlaylists checks each track's media playlist carries the
// key: before every segment with its own IV for AES-128, once before the
// init segment for sample encryption.
func checkEncryptedPlaylists(t *testing.T, res encodeResult, p Protection) {
	for _, o := range res.outputs {
		name, ok := mediaPlaylistOf(o)
		if !ok {
			continue
		}
		pl, err := parseM3U8([]byte(readFile(t, res.cmd.OutDir, name)))
		require.NoError(t, err, name)
		ivs := map[string]bool{}
		for _, s := range pl.segments {
			require.NotNil(t, s.key, "%s: %s is listed without a key", name, s.uri)
			require.Equal(t, p.KeyURI, s.key["URI"], name)
			switch p.Method {
			case encodespec.EncryptAES128:
				require.Equal(t, "AES-128", s.key["METHOD"])
				require.Regexp(t, `^0x[0-9a-f]{32}$`, s.key["IV"])
				ivs[s.key["IV"]] = true
			case encodespec.EncryptSampleAES:
				require.Equal(t, "SAMPLE-AES", s.key["METHOD"])
			case encodespec.EncryptCENC:
				require.Equal(t, "SAMPLE-AES-CTR", s.key["METHOD"])
			}
		}
		if p.Method == encodespec.EncryptAES128 {
			require.Nil(t, pl.mapKey, "%s: the init segment stays clear", name)
			require.Len(t, ivs, len(pl.segments), "%s: an IV per segment", name)
		} else {
			require.Equal(t, "identity", pl.mapKey["KEYFORMAT"], name)
		}
	}
}

// checkProtectedMPD checks every video and audio adaptation set of the MPD
// names the scheme, the key ID and the ClearKey license server.
func checkProtectedMPD(t *testing.T, res encodeResult, p Protection) {
	var doc struct {
		Sets []struct {
			ContentType string `xml:"contentType,attr"`
			Protection  []struct {
				Scheme string `xml:"schemeIdUri,attr"`
				Value  string `xml:"value,attr"`
				KID    string `xml:"urn:mpeg:cenc:2013 default_KID,attr"`
				Laurl  string `xml:"https://dashif.org/CPS Laurl"`
			} `xml:"ContentProtection"`
		} `xml:"Period>AdaptationSet"`
	}
	require.NoError(t, xml.Unmarshal([]byte(readFile(t, res.cmd.OutDir, dashManifest)), &doc))
	require.Len(t, doc.Sets, 2)
	scheme := (encodespec.Encryption{Method: p.Method}).Scheme()
	for _, s := range doc.Sets {
		require.Len(t, s.Protection, 2, s.ContentType)
		assert.Equal(t, "urn:mpeg:dash:mp4protection:2011", s.Protection[0].Scheme)
		assert.Equal(t, scheme, s.Protection[0].Value)
		assert.Equal(t, p.KIDString(), s.Protection[0].KID)
		assert.Equal(t, "urn:uuid:"+clearKeySystemID, s.Protection[1].Scheme)
		assert.Equal(t, p.LicenseURI, s.Protection[1].Laurl)
	}
	// The MPD still lists every segment, and parses as before.
	tracks, err := parseMPD([]byte(readFile(t, res.cmd.OutDir, dashManifest)))
	require.NoError(t, err)
	require.Len(t, tracks, 3)
}

func concat(t *testing.T, parts ...string) string {
	f := filepath.Join(t.TempDir(), "track.mp4")
	require.NoError(t, os.WriteFile(f, []byte(strings.Join(parts, "")), 0o644))
	return f
}

// frames decodes file and returns a digest of every decoded frame; an
// error when FFmpeg reports any decoding problem.
func frames(ffmpegBin, file string, opts ...string) (string, error) {
	args := append([]string{"-hide_banner", "-v", "error"}, opts...)
	args = append(args, "-i", file, "-f", "framemd5", "-")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(ffmpegBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		return "", fmt.Errorf("ffmpeg %v: %w: %s", args, err, stderr.String())
	}
	var digest strings.Builder
	for line := range strings.Lines(stdout.String()) {
		if !strings.HasPrefix(line, "#") {
			digest.WriteString(line)
		}
	}
	return digest.String(), nil
}

func framesThrough(t *testing.T, manifest string, opts ...string) string {
	ffmpegBin, _ := binaries(t)
	got, err := frames(ffmpegBin, manifest, opts...)
	require.NoError(t, err)
	require.NotEmpty(t, got)
	return got
}

func TestProtectionKeepsItsKey(t *testing.T) {
	t.Parallel()
	p := testProtection(t, encodespec.EncryptCENC)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("encrypting", slog.Any("protection", p))
	for _, text := range []string{fmt.Sprint(p), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", []Protection{p}), logged.String()} {
		require.Contains(t, text, p.KIDString())
		require.NotContains(t, strings.ToLower(text), hex.EncodeToString(p.Key))
		require.NotContains(t, text, fmt.Sprintf("%#v", p.Key))
	}
}

func TestEncryptRefuses(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		change func(*Protection)
		want   string
	}{
		"short key":      {func(p *Protection) { p.Key = p.Key[:8] }, "must be 16 bytes, got 8"},
		"no key URI":     {func(p *Protection) { p.KeyURI = "" }, "key URI"},
		"quoted key URI": {func(p *Protection) { p.KeyURI = `https://x/"k"` }, "key URI"},
		"markup license": {func(p *Protection) { p.LicenseURI = "https://x/<a>" }, "license URI"},
		"unknown method": {func(p *Protection) { p.Method = "rot13" }, `unknown encryption method "rot13"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := testProtection(t, encodespec.EncryptCENC)
			tt.change(&p)
			require.ErrorContains(t, Encrypt(Command{OutDir: t.TempDir()}, nil, p), tt.want)
		})
	}
}
