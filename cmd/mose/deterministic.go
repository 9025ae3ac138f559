package main

import (
	"fmt"
	"os"

	"github.com/mose-llm/mose/internal/torch"
)

// MOSE_DETERMINISTIC=1 turns on libtorch's deterministic mode for the whole
// process (torch.SetDeterministic: deterministic algorithms, math-only
// attention), and sets CUBLAS_WORKSPACE_CONFIG=:4096:8 unless it is already
// set, before any CUDA work. Seeded CUDA runs and resumes are then
// bit-identical; without it cuBLAS and the fused attention backwards may
// differ in the last bits from run to run. CPU runs are deterministic anyway.
func init() {
	switch v := os.Getenv("MOSE_DETERMINISTIC"); v {
	case "", "0":
		return
	case "1":
	default:
		fmt.Fprintf(os.Stderr, "mose: error: MOSE_DETERMINISTIC=%q (want 1, 0 or unset)\n", v)
		os.Exit(2)
	}
	if os.Getenv("CUBLAS_WORKSPACE_CONFIG") == "" {
		if err := os.Setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8"); err != nil {
			fmt.Fprintln(os.Stderr, "mose: error: MOSE_DETERMINISTIC:", err)
			os.Exit(1)
		}
	}
	if err := torch.SetDeterministic(true); err != nil {
		fmt.Fprintln(os.Stderr, "mose: error: MOSE_DETERMINISTIC:", err)
		os.Exit(1)
	}
}
