package guests

import (
	"bytes"
	"errors"
	"testing"

	"github.com/compat-project/compat/runners/testenv"
)

func TestBuild(t *testing.T) {
	for _, name := range []string{"probe.c", "vkprobe.c"} {
		b, err := C(name)
		if errors.Is(err, ErrToolMissing) {
			testenv.Missing(t, "%v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("\x00asm")) {
			t.Fatalf("%s: not a wasm module", name)
		}
	}
	a, err := Ident("a")
	if errors.Is(err, ErrToolMissing) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Ident("b")
	if bytes.Equal(a, b) {
		t.Fatal("ident variants are identical")
	}
}
