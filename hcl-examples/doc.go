// Package hclexamples holds complete, commented cafilprox.hcl examples. It has
// no code: its test parses every *.hcl file here and runs its test blocks.
package hclexamples
