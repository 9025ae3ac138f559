package omniproc

import "math"

// Resizing: Pillow's BICUBIC resampling (Resample.c) on 8-bit RGB, reproduced
// exactly: the cubic kernel with a = −0.5 stretched by the scale when shrinking
// (antialiasing), weights normalised per output pixel and rounded to 22-bit fixed
// point, a horizontal pass to 8-bit then a vertical pass, rounding and clipping to
// 0–255. transformers' PIL-backed image processor resizes through Pillow, so images
// match it bit for bit; its video processor resizes with torchvision (antialiased
// bicubic on uint8, ported from Pillow-SIMD), which follows the same algorithm with
// 16-bit weights at a precision chosen per pass from the largest weight: the Torch
// filter reproduces that (checked bit for bit against torch's interpolate).

const precisionBits = 32 - 8 - 2

// Filter selects the fixed-point arithmetic of the bicubic resampling.
type Filter int

const (
	// Pillow is Pillow's: weights at 22 bits (PIL images, transformers' image processor).
	Pillow Filter = iota
	// Torch is torch's uint8 antialiased bicubic: 16-bit weights at the largest
	// precision the pass's largest weight allows (torchvision, the video processor).
	Torch
)

func bicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return ((a+2)*x-(a+3))*x*x + 1
	}
	if x < 2 {
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// coeffs returns, per output index, the first input index and the fixed-point
// weights, and their precision in bits.
func coeffs(inSize, outSize int, f Filter) ([]int, [][]int32, uint) {
	scale := float64(inSize) / float64(outSize)
	filterscale := math.Max(scale, 1)
	support := 2 * filterscale
	first := make([]int, outSize)
	ks := make([][]float64, outSize)
	wmax := 0.0
	for xx := range outSize {
		center := (float64(xx) + 0.5) * scale
		ss := 1 / filterscale
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		k := make([]float64, xmax)
		var ww float64
		for x := range k {
			k[x] = bicubic((float64(x+xmin) - center + 0.5) * ss)
			ww += k[x]
		}
		for x := range k {
			if ww != 0 {
				k[x] /= ww
			}
			wmax = math.Max(wmax, k[x])
		}
		first[xx], ks[xx] = xmin, k
	}
	prec := uint(precisionBits)
	if f == Torch {
		prec = 0
		for ; prec < 22; prec++ {
			if int(0.5+wmax*float64(int(1)<<(prec+1))) >= 1<<15 {
				break
			}
		}
	}
	ws := make([][]int32, outSize)
	for xx, k := range ks {
		w := make([]int32, len(k))
		for x, v := range k {
			if v < 0 {
				w[x] = int32(-0.5 + v*float64(int(1)<<prec))
			} else {
				w[x] = int32(0.5 + v*float64(int(1)<<prec))
			}
		}
		ws[xx] = w
	}
	return first, ws, prec
}

func clip8(v int64, prec uint) byte {
	v >>= prec
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return byte(v)
}

// ResizeRGB resizes an h×w×3 RGB24 image to oh×ow with the bicubic filter f.
func ResizeRGB(src []byte, h, w, oh, ow int, f Filter) []byte {
	if h == oh && w == ow {
		return append([]byte(nil), src...)
	}
	img := src
	if w != ow {
		// Only the rows the vertical pass reads are resampled horizontally.
		y0, y1 := 0, h
		if h != oh {
			vf, vw, _ := coeffs(h, oh, f)
			y0, y1 = vf[0], vf[oh-1]+len(vw[oh-1])
		}
		first, ws, prec := coeffs(w, ow, f)
		tmp := make([]byte, (y1-y0)*ow*3)
		for y := y0; y < y1; y++ {
			row := src[y*w*3:]
			out := tmp[(y-y0)*ow*3:]
			for xx := range ow {
				for c := range 3 {
					s := int64(1) << (prec - 1)
					for i, k := range ws[xx] {
						s += int64(row[(first[xx]+i)*3+c]) * int64(k)
					}
					out[xx*3+c] = clip8(s, prec)
				}
			}
		}
		img = tmp
		if h == oh {
			return img
		}
		return vertical(img, ow, oh, y0, h, f)
	}
	return vertical(img, w, oh, 0, h, f)
}

// vertical resamples rows: img holds rows y0… of an image h rows high.
func vertical(img []byte, w, oh, y0, h int, f Filter) []byte {
	first, ws, prec := coeffs(h, oh, f)
	out := make([]byte, oh*w*3)
	for yy := range oh {
		for x := range w * 3 {
			s := int64(1) << (prec - 1)
			for i, k := range ws[yy] {
				s += int64(img[(first[yy]-y0+i)*w*3+x]) * int64(k)
			}
			out[yy*w*3+x] = clip8(s, prec)
		}
	}
	return out
}
