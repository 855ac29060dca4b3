package main

import (
	"encoding/hex"
	"fmt"
	"io"

	"github.com/compat-project/compat/vkernel/megabinary"
)

func keygen(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("keygen", "keygen -out KEY", stderr)
	out := fs.String("out", "", "private key file to write; the public key goes to KEY.pub")
	if err := fs.Parse(args); err != nil || *out == "" || fs.NArg() != 0 {
		return usageError(fs, err)
	}
	pub, err := megabinary.GenerateKey(*out)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "wrote %s and %s.pub (key id %s)\n", *out, *out, hex.EncodeToString(megabinary.KeyID(pub))[:16])
	return exitOK
}
