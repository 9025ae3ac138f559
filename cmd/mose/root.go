package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func newRootCmd() *cobra.Command {
	var logLevel string
	root := &cobra.Command{
		Use:   "mose",
		Short: "Modality-Specific LoRA Experts for multimodal emotion reasoning",
		Long: `mose fine-tunes a frozen multimodal LLM (Qwen2.5-Omni's thinker reading clips, or a
LLaMA-family decoder fed with projected visual and audio feature tokens) with
Modality-Specific LoRA Experts behind a regularized gate, evaluates it with optional
Attention Reallocation, and exports PEFT-compatible or merged adapters.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return setupLogging(cmd.ErrOrStderr(), logLevel)
		},
	}
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return badInput(err) })
	for _, add := range commands {
		root.AddCommand(add())
	}
	return root
}

// commands are mose's commands, one file each (cobra adds help and completion).
var commands = []func() *cobra.Command{
	newTrainCmd,        // train.go (and launch.go, ddp.go: --nproc and torchrun)
	newValidateCmd,     // validate.go
	newEvalCmd,         // eval.go
	newExportCmd,       // export.go
	newPredictCmd,      // predict.go
	newAttachCmd,       // attach.go
	newInitModelCmd,    // initmodel.go
	newModelInfoCmd,    // modelinfo.go
	newSynthDataCmd,    // synthdata.go
	newImportMERCmd,    // importmer.go
	newValidateDataCmd, // validatedata.go
	newDumpLogitsCmd,   // dumplogits.go
	newPreprocessCmd,   // preprocess.go
	newPrepareDataCmd,  // preparedata.go
	newVersionCmd,      // root.go
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the mose version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "mose %s\n", version)
			return nil
		},
	}
}

// setupLogging configures logrus: text on a terminal, JSON otherwise.
func setupLogging(w io.Writer, level string) error {
	lvl, err := logrus.ParseLevel(level)
	if err != nil {
		return badInput(fmt.Errorf("--log-level: %w", err))
	}
	logrus.SetLevel(lvl)
	logrus.SetOutput(w)
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	} else {
		logrus.SetFormatter(&logrus.JSONFormatter{})
	}
	return nil
}
