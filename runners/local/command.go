package local

import (
	"strings"

	"github.com/compat-project/compat/runners"
)

// Command implements runners.Target: the sh command line that runs p on
// the host as Run does, its guest paths mapped to host paths.
func (t *Target) Command(p runners.Process) string {
	var parts []string
	if p.Dir != "" {
		parts = append(parts, "cd "+runners.QuoteCommand(t.mapValue(p.Dir))+" &&")
	}
	env := append(append([]string(nil), t.opts.Env...), p.Env...)
	if len(env) > 0 {
		args := []string{"env"}
		for _, e := range env {
			args = append(args, t.mapValue(e))
		}
		parts = append(parts, runners.QuoteCommand(args...))
	}
	args := make([]string, len(p.Args))
	for i, a := range p.Args {
		args[i] = t.mapValue(a)
	}
	parts = append(parts, runners.QuoteCommand(args...))
	return strings.Join(parts, " ")
}
