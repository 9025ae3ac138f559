package plots

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// dpi is the resolution of every PNG.
const dpi = 96

// legendWidth is the strip kept right of the panels for their legends.
const legendWidth = 1.9 * vg.Inch

// renderStack draws plots stacked vertically, each panelH tall and w wide, aligned
// on their data areas, and returns the PNG bytes. With legends, each panel's
// legend is drawn in a strip on its right instead of over the data.
func renderStack(panels []*plot.Plot, w, panelH vg.Length, legends bool) ([]byte, error) {
	rows := make([][]*plot.Plot, len(panels))
	moved := make([]plot.Legend, len(panels))
	for i, p := range panels {
		rows[i] = []*plot.Plot{p}
		if legends {
			moved[i] = p.Legend
			p.Legend = plot.NewLegend()
		}
	}
	img := vgimg.NewWith(vgimg.UseWH(w, panelH*vg.Length(len(panels))), vgimg.UseDPI(dpi),
		vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	if legends {
		dc = draw.Crop(dc, 0, -legendWidth, 0, 0)
	}
	tiles := draw.Tiles{
		Rows: len(panels), Cols: 1,
		PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter,
		PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter,
	}
	canvases := plot.Align(rows, tiles, dc)
	for i, p := range panels {
		c := canvases[i][0]
		p.Draw(c)
		if legends {
			strip := c
			strip.Min.X = c.Max.X + 2*vg.Millimeter
			strip.Max.X = c.Max.X + legendWidth
			strip.Max.Y -= p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y + p.Title.Padding
			moved[i].Top, moved[i].Left = true, true
			moved[i].Draw(strip)
		}
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	return buf.Bytes(), nil
}

// writeAtomic writes data to path through a temporary file in the same directory,
// fsynced and renamed over path, creating the directory if needed.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// series is one named curve.
type series struct {
	name string
	xys  plotter.XYs
}

// add appends (x, y) when both are finite.
func (s *series) add(x, y float64) {
	if finite(x) && finite(y) {
		s.xys = append(s.xys, plotter.XY{X: x, Y: y})
	}
}

// sorted returns the points ordered by step, keeping only the last point written
// for each step: a resumed run logs again the steps after its checkpoint, and an
// eval-only record may repeat the step of a training record.
func (s series) sorted() plotter.XYs {
	last := make(map[float64]int, len(s.xys))
	for i, p := range s.xys {
		last[p.X] = i
	}
	out := make(plotter.XYs, 0, len(last))
	for i, p := range s.xys {
		if last[p.X] == i {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].X < out[j].X })
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// captioned is a panel title under a plot's caption (the run and step it
// shows), when there is one.
func captioned(caption, title string) string {
	if caption == "" {
		return title
	}
	return caption + " — " + title
}

// newPanel returns a plot with a title, axis labels and a grid.
func newPanel(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

// addLines adds each non-empty series as a coloured line (dashed once the colours
// run out) with a legend entry, and point markers when points is true or the
// series has a single point.
func addLines(p *plot.Plot, ss []series, points bool) error {
	for i, s := range ss {
		if len(s.xys) == 0 {
			continue
		}
		col := plotutil.Color(i)
		xys := s.sorted()
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("line %q: %w", s.name, err)
		}
		l.Color = col
		l.Dashes = plotutil.Dashes(i / len(plotutil.DefaultColors)) // solid for the first colours
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(s.name, l)
		if points || len(xys) == 1 {
			sc, err := plotter.NewScatter(xys)
			if err != nil {
				return fmt.Errorf("points %q: %w", s.name, err)
			}
			sc.Color = col
			sc.Shape = draw.CircleGlyph{}
			sc.Radius = vg.Points(2.5)
			p.Add(sc)
		}
	}
	return nil
}
