package ffmpeg

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/mpegflow/mpegflow/internal/encodespec"
)

// Attributes Encrypt records on the encrypted init segments and files.
const (
	AttrEncryptionMethod = "encryption.method" // encodespec.Encrypt*
	AttrEncryptionKID    = "encryption.kid"    // the key ID, a UUID (not secret)
)

// clearKeySystemID is the DASH-IF identifier of W3C ClearKey, and
// commonSystemID the W3C "common" PSSH system whose box lists key IDs.
const (
	clearKeySystemID = "e2719d58-a985-b3c9-781a-b030af78d30e"
	commonSystemID   = "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"
)

// Protection is one job's content key and where players get it. It never
// prints its key: String and LogValue show the method and key ID only.
type Protection struct {
	// Method is encodespec.EncryptAES128, EncryptSampleAES or EncryptCENC.
	Method string
	// Key is the 16-byte AES key; KID identifies it (Common Encryption's
	// default_KID).
	Key []byte
	KID [16]byte
	// KeyURI answers the raw key (HLS EXT-X-KEY URI).
	KeyURI string
	// LicenseURI is the ClearKey license server a DASH player asks.
	LicenseURI string
}

// KIDString is the key ID as a UUID, the form manifests and the API use.
func (p Protection) KIDString() string {
	h := hex.EncodeToString(p.KID[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// String names the method and key ID, never the key.
func (p Protection) String() string { return p.Method + " kid " + p.KIDString() }

// GoString keeps the key out of %#v too.
func (p Protection) GoString() string { return p.String() }

// LogValue keeps the key out of logs.
func (p Protection) LogValue() slog.Value {
	return slog.GroupValue(slog.String("method", p.Method), slog.String("kid", p.KIDString()))
}

func (p Protection) check() error {
	switch {
	case len(p.Key) != 16:
		return fmt.Errorf("the content key must be 16 bytes, got %d", len(p.Key))
	case p.KeyURI == "" || strings.ContainsAny(p.KeyURI, "\"\r\n"):
		return errors.New("a key URI without quotes or line breaks is required")
	case p.Method != encodespec.EncryptAES128 && (encodespec.Encryption{Method: p.Method}).Scheme() == "":
		return fmt.Errorf("unknown encryption method %q", p.Method)
	case p.Method != encodespec.EncryptAES128 && (p.LicenseURI == "" || strings.ContainsAny(p.LicenseURI, "<>&\"")):
		return errors.New("a license URI without XML markup is required")
	}
	return nil
}

// Encrypt encrypts, in place, the media segments of every video and audio
// track that Collect listed (files) and rewrites the playlists and the MPD
// to say so. Run it after Verify, which reads clear media. Init segments
// of Common Encryption tracks gain their protection boxes (and a common
// PSSH box naming the key ID); with AES-128 they stay clear, as RFC 8216
// allows when the EXT-X-KEY follows the EXT-X-MAP. Each encrypted track's
// init segment records the method and key ID in its Attributes. A segment
// that a track's playlist does not list is an error (it would go out clear).
func Encrypt(cmd Command, files []Output, p Protection) error {
	if err := p.check(); err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	expected := make(map[string]bool, len(cmd.ExpectedOutputs))
	for _, o := range cmd.ExpectedOutputs {
		expected[o.Name] = true
	}
	for i, init := range files {
		fam, ok := familyOf(init)
		if !ok {
			continue
		}
		var segments []string
		for _, f := range files {
			dir, base := path.Split(f.Name)
			if f.ContentType == ContentTypeSegment && f.Name != init.Name && dir == fam.dir && strings.HasPrefix(base, fam.prefix) {
				segments = append(segments, f.Name)
			}
		}
		playlist, hasPlaylist := mediaPlaylistOf(init)
		hasPlaylist = hasPlaylist && expected[playlist]
		var err error
		if p.Method == encodespec.EncryptAES128 {
			if !hasPlaylist {
				return fmt.Errorf("encrypt %s: AES-128 needs an HLS media playlist", init.Name)
			}
			err = encryptWholeSegments(cmd.OutDir, playlist, segments, p)
		} else {
			err = protectTrack(cmd.OutDir, init.Name, segments, p)
			if err == nil && hasPlaylist {
				err = addSampleKeyTag(cmd.OutDir, playlist, p)
			}
		}
		if err != nil {
			return fmt.Errorf("encrypt %s: %w", init.Name, err)
		}
		attrs := make(map[string]string, len(init.Attributes)+2)
		for k, v := range init.Attributes {
			attrs[k] = v
		}
		attrs[AttrEncryptionMethod], attrs[AttrEncryptionKID] = p.Method, p.KIDString()
		files[i].Attributes = attrs
	}
	if expected[dashManifest] {
		if err := protectManifest(filepath.Join(cmd.OutDir, dashManifest), p); err != nil {
			return fmt.Errorf("encrypt %s: %w", dashManifest, err)
		}
	}
	return nil
}

// encryptWholeSegments encrypts every segment the playlist lists with
// AES-128-CBC and PKCS#7 padding, each with its own random IV, and writes
// an EXT-X-KEY before each segment naming the IV.
func encryptWholeSegments(outDir, playlist string, segments []string, p Protection) error {
	file, pl, err := readPlaylist(outDir, playlist)
	if err != nil {
		return err
	}
	block, err := aes.NewCipher(p.Key)
	if err != nil {
		return err
	}
	dir := path.Dir(playlist)
	listed := make([]string, 0, len(pl.segments))
	tags := make([]string, len(pl.segments))
	for i, s := range pl.segments {
		name := path.Join(dir, s.uri)
		if !slices.Contains(segments, name) {
			return fmt.Errorf("%s lists %s, which is not a segment of this track", playlist, s.uri)
		}
		listed = append(listed, name)
		iv := make([]byte, aes.BlockSize)
		if _, err := rand.Read(iv); err != nil {
			return err
		}
		if err := rewriteFile(filepath.Join(outDir, filepath.FromSlash(name)), func(clear []byte) ([]byte, error) {
			return cbcEncrypt(block, iv, clear), nil
		}); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		tags[i] = fmt.Sprintf("#EXT-X-KEY:METHOD=AES-128,URI=%q,IV=0x%x\n", p.KeyURI, iv)
	}
	if len(listed) != len(segments) {
		return fmt.Errorf("%s lists %d of the track's %d segments", playlist, len(listed), len(segments))
	}
	return writeAtomically(file, vodPlaylist(pl, playlistKeys{segment: tags}))
}

// cbcEncrypt pads clear to whole blocks (PKCS#7) and encrypts it.
func cbcEncrypt(block cipher.Block, iv, clear []byte) []byte {
	pad := aes.BlockSize - len(clear)%aes.BlockSize
	out := make([]byte, len(clear)+pad)
	copy(out, clear)
	for i := len(clear); i < len(out); i++ {
		out[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, out)
	return out
}

// protectTrack applies Common Encryption (the method's scheme) to one
// track: its init segment gains the protection boxes and a common PSSH
// box, and the samples of each media segment are encrypted, with
// subsamples keeping video NAL headers clear.
func protectTrack(outDir, init string, segments []string, p Protection) error {
	scheme := (encodespec.Encryption{Method: p.Method}).Scheme()
	pssh, err := mp4.NewPsshBox(commonSystemID, []string{p.KIDString()}, nil)
	if err != nil {
		return fmt.Errorf("pssh: %w", err)
	}
	// cenc takes an 8-byte IV per sample (incremented across samples);
	// cbcs a constant 16-byte IV carried in the init segment.
	iv := make([]byte, 8)
	if scheme == "cbcs" {
		iv = make([]byte, 16)
	}
	if _, err := rand.Read(iv); err != nil {
		return err
	}
	var ipd *mp4.InitProtectData
	err = rewriteFile(filepath.Join(outDir, filepath.FromSlash(init)), func(clear []byte) ([]byte, error) {
		f, err := mp4.DecodeFile(bytes.NewReader(clear))
		if err != nil {
			return nil, err
		}
		if f.Init == nil {
			return nil, errors.New("not an init segment")
		}
		if ipd, err = mp4.InitProtect(f.Init, p.Key, iv, scheme, mp4.UUID(p.KID[:]), []*mp4.PsshBox{pssh}); err != nil {
			return nil, err
		}
		return encodeMP4(f)
	})
	if err != nil {
		return err
	}
	for _, s := range segments {
		err := rewriteFile(filepath.Join(outDir, filepath.FromSlash(s)), func(clear []byte) ([]byte, error) {
			f, err := mp4.DecodeFile(bytes.NewReader(clear))
			if err != nil {
				return nil, err
			}
			if len(f.Segments) == 0 {
				return nil, errors.New("no media fragments")
			}
			for _, seg := range f.Segments {
				for _, frag := range seg.Fragments {
					next, err := mp4.EncryptFragment(frag, p.Key, iv, ipd)
					if err != nil {
						return nil, err
					}
					if scheme == "cenc" {
						iv = next
					}
				}
			}
			return encodeMP4(f)
		})
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func encodeMP4(f *mp4.File) ([]byte, error) {
	var b bytes.Buffer
	if err := f.Encode(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// rewriteFile replaces file with change(its contents), atomically.
func rewriteFile(file string, change func([]byte) ([]byte, error)) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	out, err := change(data)
	if err != nil {
		return err
	}
	return writeAtomically(file, out)
}

// addSampleKeyTag rewrites a media playlist of a Common Encryption track
// with one EXT-X-KEY before its EXT-X-MAP: SAMPLE-AES for cbcs,
// SAMPLE-AES-CTR for cenc, the key served raw ("identity").
func addSampleKeyTag(outDir, playlist string, p Protection) error {
	file, pl, err := readPlaylist(outDir, playlist)
	if err != nil {
		return err
	}
	method := "SAMPLE-AES"
	if p.Method == encodespec.EncryptCENC {
		method = "SAMPLE-AES-CTR"
	}
	tag := fmt.Sprintf("#EXT-X-KEY:METHOD=%s,URI=%q,KEYFORMAT=\"identity\"\n", method, p.KeyURI)
	return writeAtomically(file, vodPlaylist(pl, playlistKeys{beforeMap: tag}))
}

// adaptationSetOfMedia matches the opening tag of a video or audio
// adaptation set in the MPD the DASH muxer writes.
var adaptationSetOfMedia = regexp.MustCompile(`<AdaptationSet\b[^>]*\bcontentType="(?:video|audio)"[^>]*>`)

// protectManifest adds Common Encryption signalling to every video and
// audio adaptation set of the MPD: the scheme with the default key ID, and
// ClearKey with its license server (DASH-IF's Laurl element).
func protectManifest(file string, p Protection) error {
	return rewriteFile(file, func(mpd []byte) ([]byte, error) {
		root := regexp.MustCompile(`<MPD\b`).FindIndex(mpd)
		if root == nil {
			return nil, errors.New("no MPD element")
		}
		out := slices.Concat(mpd[:root[1]], []byte(` xmlns:cenc="urn:mpeg:cenc:2013" xmlns:dashif="https://dashif.org/CPS"`), mpd[root[1]:])
		scheme := (encodespec.Encryption{Method: p.Method}).Scheme()
		protection := fmt.Sprintf("\n\t\t\t<ContentProtection schemeIdUri=\"urn:mpeg:dash:mp4protection:2011\" value=\"%s\" cenc:default_KID=\"%s\"/>"+
			"\n\t\t\t<ContentProtection schemeIdUri=\"urn:uuid:%s\" value=\"ClearKey1.0\"><dashif:Laurl>%s</dashif:Laurl></ContentProtection>",
			scheme, p.KIDString(), clearKeySystemID, p.LicenseURI)
		n := 0
		out = adaptationSetOfMedia.ReplaceAllFunc(out, func(tag []byte) []byte {
			n++
			return append(slices.Clone(tag), protection...)
		})
		if n == 0 {
			return nil, errors.New("no video or audio adaptation set")
		}
		return out, nil
	})
}
