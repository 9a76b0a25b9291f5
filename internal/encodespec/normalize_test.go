package encodespec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalize(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		in, want Spec
	}{
		"names from size, clashes get codec then counter": {
			in: Spec{Packaging: PackagingMP4, Renditions: []Rendition{
				{Codec: CodecH264, Height: 720},
				{Codec: CodecHEVC, Height: 720},
				{Codec: CodecHEVC, Height: 720},
				{Codec: CodecH264, Width: 1280},
				{Codec: CodecH264},
				{Name: "480p", Codec: CodecH264, Height: 360},
				{Codec: CodecH264, Height: 480},
			}},
			want: Spec{Packaging: PackagingMP4, Renditions: []Rendition{
				{Name: "720p", Codec: CodecH264, Height: 720},
				{Name: "720p-hevc", Codec: CodecHEVC, Height: 720},
				{Name: "720p-2", Codec: CodecHEVC, Height: 720},
				{Name: "1280w", Codec: CodecH264, Width: 1280},
				{Name: "source", Codec: CodecH264},
				{Name: "480p", Codec: CodecH264, Height: 360},
				{Name: "480p-h264", Codec: CodecH264, Height: 480},
			}},
		},
		"segment default for hls": {
			in:   Spec{Packaging: PackagingHLS},
			want: Spec{Packaging: PackagingHLS, SegmentSeconds: 4},
		},
		"segment kept for dash": {
			in:   Spec{Packaging: PackagingDASH, SegmentSeconds: 6},
			want: Spec{Packaging: PackagingDASH, SegmentSeconds: 6},
		},
		"no segment default for mp4": {
			in:   Spec{Packaging: PackagingMP4},
			want: Spec{Packaging: PackagingMP4},
		},
		"audio defaults": {
			in:   Spec{Audio: &Audio{}},
			want: Spec{Audio: &Audio{Codec: AudioAAC, BitrateKbps: 128, Channels: 2}},
		},
		"opus 5.1 bitrate": {
			in:   Spec{Audio: &Audio{Codec: AudioOpus, Channels: 6}},
			want: Spec{Audio: &Audio{Codec: AudioOpus, BitrateKbps: 256, Channels: 6}},
		},
		"invalid audio left for Validate": {
			in:   Spec{Audio: &Audio{Codec: "mp3", Channels: 3}},
			want: Spec{Audio: &Audio{Codec: "mp3", Channels: 3}},
		},
		"loudnorm EBU R128 defaults": {
			in:   Spec{Audio: &Audio{Codec: AudioAAC, BitrateKbps: 96, Channels: 1, Loudnorm: &Loudnorm{LRA: 11}}},
			want: Spec{Audio: &Audio{Codec: AudioAAC, BitrateKbps: 96, Channels: 1, Loudnorm: &Loudnorm{IntegratedLUFS: -23, TruePeakDB: -1, LRA: 11}}},
		},
		"thumbnail width": {
			in:   Spec{Thumbnails: &Thumbnails{Poster: true}},
			want: Spec{Thumbnails: &Thumbnails{Poster: true, Width: 320}},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := tt.in.Clone()
			got.Normalize()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Normalize() mismatch (-want +got):\n%s", diff)
			}
			got.Normalize()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("second Normalize() changed the spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPosterTime(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		at, duration, want float64
	}{
		"explicit":                {at: 3, duration: 60, want: 3},
		"automatic is 10%":        {duration: 60, want: 6},
		"past the end falls back": {at: 90, duration: 60, want: 6},
		"unknown duration":        {duration: 0, want: 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := Thumbnails{Poster: true, PosterAtSeconds: tt.at}.PosterTime(tt.duration)
			if got != tt.want {
				t.Errorf("PosterTime(%g) = %g, want %g", tt.duration, got, tt.want)
			}
		})
	}
}
