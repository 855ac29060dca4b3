// Package images holds the recipes (bash, beside this file) that build the
// reference images and the WebAssembly builds; it has no Go code of its
// own. Its tests check how the recipes and the Makefile behave when the
// machine lacks something: a missing tool stops the build with its name and
// package, and make stops instead of passing an empty path on; and LLVM's
// profile runtime that lib/clang-rt-profile builds for the python.wasm PGO
// build writes real profiles from a guest in the vkernel.
package images
