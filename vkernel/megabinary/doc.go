// Package megabinary reads, builds and signs megabinaries: one file holding a
// signed manifest and the WebAssembly modules that executable hashes route
// to. The format is described in FORMAT.md beside this file.
package megabinary
