package runners

import (
	"context"

	"github.com/compat-project/compat/vkernel"
)

type hostCallsKey struct{}

// WithHostCallsDir returns a context under which targets that start
// vkernel processes (runners/vktarget, and runners/local for harnesses
// and shims) have them write their host call counts to dir: they set
// vkernel.EnvHostCallsDir in the processes' host environment, which
// every vkernel process among them and their children reads. The
// pipeline gives each unit on the vkernel a directory of its own, so the
// counts are the unit's (the polyfill coverage map, compat.HostCalls).
func WithHostCallsDir(ctx context.Context, dir string) context.Context {
	return context.WithValue(ctx, hostCallsKey{}, dir)
}

// HostCallsDir returns the directory WithHostCallsDir put in ctx, or "".
func HostCallsDir(ctx context.Context) string {
	dir, _ := ctx.Value(hostCallsKey{}).(string)
	return dir
}

// HostCallsEnv returns env, a host environment, with
// vkernel.EnvHostCallsDir set to ctx's host calls directory (last, so it
// wins over an inherited one); env as it is when ctx names none.
func HostCallsEnv(ctx context.Context, env []string) []string {
	if dir := HostCallsDir(ctx); dir != "" {
		return append(env, vkernel.EnvHostCallsDir+"="+dir)
	}
	return env
}
