package docker

import "github.com/compat-project/compat/runners"

// Command implements runners.Target: the docker run command line that runs
// p in a fresh container of the target's image with its mounts and
// environment (the target's own container is gone once it is closed).
func (t *Target) Command(p runners.Process) string {
	args := []string{"docker", "run", "--rm"}
	if p.Stdin != nil {
		args = append(args, "-i")
	}
	if t.opts.HostNetwork {
		args = append(args, "--network", "host")
	}
	for _, m := range t.opts.Mounts {
		v := m.Host + ":" + m.Guest
		if m.ReadOnly {
			v += ":ro"
		}
		args = append(args, "-v", v)
	}
	for _, e := range append(append([]string(nil), t.opts.Env...), p.Env...) {
		args = append(args, "-e", e)
	}
	dir := p.Dir
	if dir == "" {
		dir = t.opts.Workdir
	}
	if dir != "" {
		args = append(args, "-w", dir)
	}
	args = append(append(args, t.opts.Image), p.Args...)
	return runners.QuoteCommand(args...)
}
