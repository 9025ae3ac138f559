package main

import (
	"fmt"
	"sort"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/mose-llm/mose/data/mer"
)

func newImportMERCmd() *cobra.Command {
	var (
		opt   mer.Options
		feats []string
	)
	cmd := &cobra.Command{
		Use:   "import-mer --ann FILE --transcripts CSV --features name=DIR ... --out manifest.jsonl",
		Short: "Import the Emotion-LLaMA / MER2023 layout into a mose manifest",
		Long: `import-mer reads an annotation file ("name n_frames label valence" lines), a
transcript CSV (columns name and sentence) and one .npy per clip in each feature
folder (--features hubert=DIR, repeatable, named after the model's inputs), checks
everything, and writes a manifest whose paths are relative to --root (default: the
manifest's directory). Labels are mapped to the nine canonical ones (worried→worry).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, name := range []string{"ann", "transcripts", "features", "out"} {
				if !cmd.Flags().Changed(name) {
					return badInput(fmt.Errorf("import-mer: --%s is required", name))
				}
			}
			for _, s := range feats {
				f, err := mer.ParseFeature(s)
				if err != nil {
					return badInput(err)
				}
				opt.Features = append(opt.Features, f)
			}
			res, err := mer.Import(opt)
			if err != nil {
				return badInput(fmt.Errorf("import-mer: %w", err))
			}
			labels := make([]string, 0, len(res.ByLabel))
			for l := range res.ByLabel {
				labels = append(labels, l)
			}
			sort.Strings(labels)
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "wrote %d samples to %s\n", res.Samples, opt.Out)
			for _, l := range labels {
				fmt.Fprintf(w, "  %-10s %d\n", l, res.ByLabel[l])
			}
			for _, f := range opt.Features {
				fmt.Fprintf(w, "  feature %s: shape %v\n", f.Name, res.Shapes[f.Name])
			}
			logrus.WithFields(logrus.Fields{"out": opt.Out, "samples": res.Samples}).Info("MER manifest written")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opt.Annotations, "ann", "", "annotation file: name n_frames label valence")
	f.StringVar(&opt.Transcripts, "transcripts", "", "transcript CSV (e.g. transcription_en_all.csv)")
	f.StringArrayVar(&feats, "features", nil, "input=DIR with one <clip>.npy per clip (repeatable)")
	f.StringVar(&opt.Out, "out", "", "manifest to write")
	f.StringVar(&opt.Root, "root", "", "data root the paths are relative to (default: directory of --out)")
	f.StringVar(&opt.Subset, "subset", "general", "subset of every sample")
	f.StringVar(&opt.NameColumn, "name-column", "name", "CSV column holding the clip name")
	f.StringVar(&opt.TextColumn, "text-column", "sentence", "CSV column holding the subtitle")
	f.BoolVar(&opt.AllowMissingText, "allow-missing-text", false, "give clips without a transcript an empty subtitle")
	f.StringVar(&opt.Reasons, "reasons", "", "optional MERR JSON with reason captions")
	f.StringVar(&opt.ReasonField, "reason-field", "smp_reason_caption", "caption field used as the reason")
	return cmd
}
