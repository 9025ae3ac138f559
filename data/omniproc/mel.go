package omniproc

import (
	"fmt"
	"math"

	"github.com/mose-llm/mose/internal/inputerr"
)

// Whisper holds the WhisperFeatureExtractor settings of Qwen2.5-Omni's processor.
type Whisper struct {
	Bins       int // feature_size: mel bins (128)
	NFFT       int // n_fft (400)
	Hop        int // hop_length (160)
	SampleRate int // sampling_rate (16000)
	ChunkSecs  int // chunk_length: audio is padded (and bounded) to this many seconds (300)
}

// OmniWhisper is Qwen2.5-Omni's released feature extractor configuration
// (preprocessor_config.json: feature_size 128, chunk_length 300, n_fft 400, hop 160).
var OmniWhisper = Whisper{Bins: 128, NFFT: 400, Hop: 160, SampleRate: 16000, ChunkSecs: 300}

// Frames is the number of mel frames of the padded input: chunk_length·rate/hop.
func (w Whisper) Frames() int { return w.ChunkSecs * w.SampleRate / w.Hop }

// melFilters returns the (NFFT/2+1)×Bins slaney-normalised triangular filters on the
// slaney mel scale from 0 to 8000 Hz, as transformers' mel_filter_bank.
func (w Whisper) melFilters() [][]float64 {
	nf := w.NFFT/2 + 1
	toMel := func(f float64) float64 {
		if f >= 1000 {
			return 15 + math.Log(f/1000)*27/math.Log(6.4)
		}
		return 3 * f / 200
	}
	toHz := func(m float64) float64 {
		if m >= 15 {
			return 1000 * math.Exp(math.Log(6.4)/27*(m-15))
		}
		return 200 * m / 3
	}
	lo, hi := toMel(0), toMel(8000)
	n := w.Bins + 2
	ff := make([]float64, n) // filter edges in Hz
	for i := range ff {
		ff[i] = toHz(lo + (hi-lo)*float64(i)/float64(n-1))
	}
	out := make([][]float64, nf)
	for k := range out {
		fk := float64(w.SampleRate/2) * float64(k) / float64(nf-1)
		out[k] = make([]float64, w.Bins)
		for m := 0; m < w.Bins; m++ {
			down := -(ff[m] - fk) / (ff[m+1] - ff[m])
			up := (ff[m+2] - fk) / (ff[m+2] - ff[m+1])
			v := math.Max(0, math.Min(down, up))
			out[k][m] = v * 2 / (ff[m+2] - ff[m])
		}
	}
	return out
}

// LogMel computes the log-mel features of one waveform (SampleRate, mono) as
// WhisperFeatureExtractor does with padding="max_length": the waveform zero-padded
// to ChunkSecs seconds, a centred STFT (reflect padding, periodic Hann window), the
// last frame dropped, power spectra through the mel filters, log10 clamped at 1e-10,
// floored at max−8 and mapped by (x+4)/4. It returns the Bins×Frames features
// (row-major) and the attention mask (1 for the frames that start inside the
// waveform). A waveform longer than ChunkSecs is refused, not truncated.
func (w Whisper) LogMel(wave []float32) ([]float32, []int64, error) {
	nSamples := w.ChunkSecs * w.SampleRate
	if len(wave) == 0 || len(wave) > nSamples {
		return nil, nil, inputerr.Mark(fmt.Errorf("audio of %d samples, want 1 to %d (%d s at %d Hz)", len(wave), nSamples, w.ChunkSecs, w.SampleRate))
	}
	frames, nfft, hop, nf := w.Frames(), w.NFFT, w.Hop, w.NFFT/2+1
	pad := nfft / 2
	// x: the padded waveform in float32 (as torch reads it), reflect-padded by n_fft/2.
	x := make([]float64, nSamples+2*pad)
	for i := range nSamples {
		if i < len(wave) {
			x[pad+i] = float64(wave[i])
		}
	}
	for i := 1; i <= pad; i++ {
		x[pad-i] = x[pad+i]
		x[pad+nSamples-1+i] = x[pad+nSamples-1-i]
	}
	win := make([]float64, nfft)
	for i := range win {
		win[i] = float32ish(0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(nfft)))
	}
	filt := w.melFilters()
	// Frames whose window lies wholly in the zero padding have zero power: only the
	// first `live` frames need a transform.
	live := min(frames, (len(wave)+pad+hop-1)/hop+1)
	logs := make([]float64, w.Bins*frames)
	floor := math.Log10(1e-10)
	for i := range logs {
		logs[i] = floor
	}
	tr := newFFT(nfft)
	seg := make([]complex128, nfft)
	spec := make([]complex128, nfft)
	power := make([]float64, nf)
	for t := range live {
		for i := range seg {
			seg[i] = complex(x[t*hop+i]*win[i], 0)
		}
		tr.transform(spec, seg)
		for k := range nf {
			re, im := real(spec[k]), imag(spec[k])
			power[k] = re*re + im*im
		}
		for m := range w.Bins {
			var e float64
			for k := range nf {
				e += filt[k][m] * power[k]
			}
			logs[m*frames+t] = math.Log10(math.Max(e, 1e-10))
		}
	}
	mx := math.Inf(-1)
	for _, v := range logs {
		mx = math.Max(mx, v)
	}
	out := make([]float32, len(logs))
	for i, v := range logs {
		out[i] = float32((math.Max(v, mx-8) + 4) / 4)
	}
	mask := make([]int64, frames)
	for t := range mask {
		if t*hop < len(wave) {
			mask[t] = 1
		}
	}
	return out, mask, nil
}

// float32ish rounds to float32 precision (torch's float32 window).
func float32ish(v float64) float64 { return float64(float32(v)) }

// AudioTokens is the number of audio placeholder tokens for n valid mel frames:
// ((n−1)//2+1−2)//2+1, as the processor's _get_feat_extract_output_lengths.
// Python's floor division is kept: one frame gives no token.
func AudioTokens(n int) int {
	floorDiv := func(a, b int) int {
		q := a / b
		if a%b != 0 && a < 0 {
			q--
		}
		return q
	}
	l := floorDiv(n-1, 2) + 1
	return floorDiv(l-2, 2) + 1
}
