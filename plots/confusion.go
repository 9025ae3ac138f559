package plots

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Confusion writes to path a PNG heat map of a confusion matrix with the count in
// every cell: rows are the true labels (first label at the top), columns the
// predicted labels, as metrics.SubsetMetrics.Confusion. matrix must be
// len(labels)×len(labels) with non-negative counts; an empty label list is an
// error wrapping ErrNoData. The title starts with caption (the run and
// step; "" for none).
func Confusion(labels []string, matrix [][]int, caption, path string) error {
	n := len(labels)
	if n == 0 {
		return fmt.Errorf("plots: confusion %s: %w", path, ErrNoData)
	}
	if len(matrix) != n {
		return fmt.Errorf("plots: confusion %s: %d rows for %d labels", path, len(matrix), n)
	}
	maxCount := 0
	for i, row := range matrix {
		if len(row) != n {
			return fmt.Errorf("plots: confusion %s: row %d has %d columns for %d labels", path, i, len(row), n)
		}
		for j, v := range row {
			if v < 0 {
				return fmt.Errorf("plots: confusion %s: negative count %d at (%d, %d)", path, v, i, j)
			}
			maxCount = max(maxCount, v)
		}
	}

	g := grid{m: matrix}
	h := plotter.NewHeatMap(g, blues(256))
	h.Min, h.Max = 0, math.Max(float64(maxCount), 1)

	// Cell counts, centred, white on dark cells.
	var cells plotter.XYLabels
	for r := range n {
		for c := range n {
			cells.XYs = append(cells.XYs, plotter.XY{X: float64(c), Y: float64(n - 1 - r)})
			cells.Labels = append(cells.Labels, strconv.Itoa(matrix[r][c]))
		}
	}
	lab, err := plotter.NewLabels(cells)
	if err != nil {
		return fmt.Errorf("plots: confusion %s: %w", path, err)
	}
	for i := range lab.TextStyle {
		sty := &lab.TextStyle[i]
		sty.XAlign, sty.YAlign = draw.XCenter, draw.YCenter
		sty.Font.Size = vg.Points(9)
		if v := matrix[i/n][i%n]; float64(v) > 0.55*h.Max {
			sty.Color = color.White
		}
	}

	p := plot.New()
	p.Title.Text = captioned(caption, "Confusion matrix")
	p.X.Label.Text = "predicted"
	p.Y.Label.Text = "true"
	p.Add(h, lab)
	xt := make(plot.ConstantTicks, n)
	yt := make(plot.ConstantTicks, n)
	for i, l := range labels {
		xt[i] = plot.Tick{Value: float64(i), Label: l}
		yt[i] = plot.Tick{Value: float64(n - 1 - i), Label: l}
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = xt, yt
	p.X.Tick.Label.Rotation = math.Pi / 4
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YTop
	p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	p.X.Padding, p.Y.Padding = 0, 0

	side := max(5*vg.Inch, vg.Length(n)*0.6*vg.Inch+2*vg.Inch)
	png, err := renderStack([]*plot.Plot{p}, side, side, false)
	if err != nil {
		return fmt.Errorf("plots: confusion %s: %w", path, err)
	}
	if err := writeAtomic(path, png); err != nil {
		return fmt.Errorf("plots: confusion %s: %w", path, err)
	}
	return nil
}

// grid exposes a square confusion matrix as a plotter.GridXYZ: column c is the
// predicted label c, grid row r is the true label n-1-r (so row 0 is on top).
type grid struct{ m [][]int }

func (g grid) Dims() (c, r int)   { return len(g.m), len(g.m) }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }
func (g grid) Z(c, r int) float64 { return float64(g.m[len(g.m)-1-r][c]) }

// palette is a plain list of colours (gonum's palette.Palette).
type palette []color.Color

func (p palette) Colors() []color.Color { return p }

// blues returns n colours from white to dark blue.
func blues(n int) palette {
	p := make(palette, n)
	for i := range p {
		t := float64(i) / float64(max(n-1, 1))
		p[i] = color.RGBA{
			R: uint8(247 - t*(247-8)),
			G: uint8(251 - t*(251-48)),
			B: uint8(255 - t*(255-107)),
			A: 255,
		}
	}
	return p
}
