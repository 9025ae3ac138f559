package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plotTable draws two bar panels, `all` accuracy and the conflict gap, with
// ±sd error bars, one bar per row of the table.
func plotTable(res result, path string) error {
	names := make([]string, len(res.Rows))
	for i, r := range res.Rows {
		names[i] = fmt.Sprintf("%s\n(%d)", r.Name, r.Trainable)
	}
	acc, err := barPanel("all accuracy (%), mean ± sd", names, res.Rows, func(r row) stat { return r.Accuracy["all"] })
	if err != nil {
		return err
	}
	gap, err := barPanel("conflict gap (pp), mean ± sd", names, res.Rows, func(r row) stat { return r.Gap })
	if err != nil {
		return err
	}
	return save(path, 12*vg.Inch, 4*vg.Inch, acc, gap)
}

func barPanel(title string, names []string, rows []row, pick func(row) stat) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	vals := make(plotter.Values, len(rows))
	errs := make(plotter.YErrors, len(rows))
	xys := make(plotter.XYs, len(rows))
	for i, r := range rows {
		s := pick(r)
		vals[i] = 100 * s.Mean
		errs[i].Low, errs[i].High = 100*s.SD, 100*s.SD
		xys[i].X, xys[i].Y = float64(i), 100*s.Mean
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(22))
	if err != nil {
		return nil, err
	}
	bars.Color = color.RGBA{R: 70, G: 110, B: 180, A: 255}
	p.Add(bars)
	eb, err := plotter.NewYErrorBars(struct {
		plotter.XYs
		plotter.YErrors
	}{xys, errs})
	if err != nil {
		return nil, err
	}
	p.Add(eb)
	p.NominalX(names...)
	p.X.Tick.Label.Font.Size = vg.Points(7)
	return p, nil
}

// plotStudy draws, per variant, `all` accuracy and the conflict gap against
// the knob, with ±sd error bars.
func plotStudy(st studyResult, path string) error {
	acc := plot.New()
	acc.Title.Text = "all accuracy (%) vs " + st.Knob
	gap := plot.New()
	gap.Title.Text = "conflict gap (pp) vs " + st.Knob
	for _, p := range []*plot.Plot{acc, gap} {
		p.X.Label.Text = st.Knob
		p.Legend.Top = true
	}
	if len(st.Points) == 0 {
		return fmt.Errorf("study: no points")
	}
	for vi, r0 := range st.Points[0].Rows {
		for pi, pick := range []func(row) stat{
			func(r row) stat { return r.Accuracy["all"] },
			func(r row) stat { return r.Gap },
		} {
			xys := make(plotter.XYs, len(st.Points))
			errs := make(plotter.YErrors, len(st.Points))
			for i, pt := range st.Points {
				s := pick(pt.Rows[vi])
				xys[i].X, xys[i].Y = st.Values[i], 100*s.Mean
				errs[i].Low, errs[i].High = 100*s.SD, 100*s.SD
			}
			line, points, err := plotter.NewLinePoints(xys)
			if err != nil {
				return err
			}
			c := plotutil.Color(vi)
			line.Color, points.Color = c, c
			points.Shape = draw.CircleGlyph{}
			eb, err := plotter.NewYErrorBars(struct {
				plotter.XYs
				plotter.YErrors
			}{xys, errs})
			if err != nil {
				return err
			}
			eb.Color = c
			p := []*plot.Plot{acc, gap}[pi]
			p.Add(line, points, eb)
			p.Legend.Add(fmt.Sprintf("%s (%d)", r0.Name, r0.Trainable), line, points)
		}
	}
	return save(path, 12*vg.Inch, 4*vg.Inch, acc, gap)
}

// save renders the panels side by side into a PNG.
func save(path string, w, h vg.Length, panels ...*plot.Plot) error {
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 2,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	cv := plot.Align([][]*plot.Plot{panels}, tiles, dc)
	for i, p := range panels {
		p.Draw(cv[0][i])
	}
	f, err := createFile(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(f)
	return err
}
