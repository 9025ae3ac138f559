// Package docscheck checks the repository's Markdown documentation; its tests
// are its only code, and it needs neither cgo nor libtorch.
//
// go test ./internal/docscheck fails when
//   - README.md is longer than a front door (maxReadmeLines lines);
//   - a relative Markdown link in README.md, docs/*.md, recipes/README.md,
//     data/README.md or scripts/README.md names a file that does not exist, or a
//     #anchor into a Markdown file that has no heading with that GitHub slug;
//   - any *.md file of the repository carries development-journal prose (who did
//     what, when, in which session) instead of documentation.
//
// Every problem is reported, not only the first, so one run lists all broken
// links. The repository root is found by walking up from the package directory
// to go.mod.
package docscheck
