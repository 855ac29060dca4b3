package redis

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/compat-project/compat/adapters/internal/shim"
)

// ShimMain runs redis-server.wasm in the vkernel as a native redis-server
// (or redis-check-aof, redis-check-rdb: the same binary, chosen by argv[0])
// runs, for runtest's own servers (the suite's src/redis-server). argv is
// the command line, argv[0] naming the program. It returns the exit status.
//
// What a native redis-server does and the shim stands in for:
//   - listening: the configuration's port on each bind address, and its
//     unixsocket, are bound on the host and handed to the instance, which
//     takes them by address and path. "*" and "::*" bind loopback only
//     (127.0.0.1, ::1): the suite's clients connect there. A port in use
//     is reported in Redis' own words ("Failed listening on port"), so
//     that runtest tries another;
//   - the working directory: the instance starts in the shim's, mounted at
//     its host path, so relative paths in the configuration ("dir
//     ./tests/tmp/server.1") mean what they mean natively;
//   - the pid: the instance reports the shim's (INFO process_id, the
//     "PID:" runtest waits for), and signals sent to it reach the
//     instance: TERM, INT, HUP, USR1, USR2 and ABRT through the vkernel's
//     signal delivery, so SIGTERM is Redis' own orderly shutdown and
//     SIGABRT its crash report; KILL, STOP and CONT act on the shim
//     process itself. The children the instance forks (BGSAVE and the
//     like) are child processes of the shim, as natively.
//
// The megabinary, its key and the build come from the environment the
// scripts of VkernelPrograms set (shim.Config).
func ShimMain(argv []string, stdout, stderr io.Writer) int {
	code, err := shimRun(argv, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s (compat redis shim): %v\n", progName(argv), err)
		return 1
	}
	return code
}

func progName(argv []string) string {
	if len(argv) == 0 {
		return "redis-server"
	}
	return filepath.Base(argv[0])
}

func shimRun(argv []string, stdout, stderr io.Writer) (int, error) {
	cfg, err := shim.FromEnv()
	if err != nil {
		return 0, err
	}
	name := progName(argv)
	args := argv[min(1, len(argv)):]
	cwd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	mounts := shim.AddDir(cfg.Mounts, cwd)
	var listeners []net.Listener
	if name == "redis-server" {
		o, err := readServerOptions(args)
		if err != nil {
			return 0, err
		}
		if o.configFile != "" {
			mounts = shim.AddDir(mounts, filepath.Dir(o.configFile))
		}
		mounts = shim.AddDir(mounts, o.dir)
		if o.unixSocket != "" {
			mounts = shim.AddDir(mounts, filepath.Dir(o.unixSocket))
		}
		if !o.info {
			ls, err := o.listen()
			if err != nil {
				fmt.Fprint(stdout, err) // redis-server's log
				return 1, nil
			}
			listeners = ls
			defer func() {
				for _, l := range ls {
					l.Close()
				}
			}()
		}
	} else {
		// redis-check-aof, redis-check-rdb: their file arguments.
		for _, a := range args {
			if filepath.IsAbs(a) {
				mounts = shim.AddDir(mounts, filepath.Dir(a))
			}
		}
	}

	ctx := context.Background()
	k, err := shim.Open(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer k.Close()

	// Redis handles these itself (SIGTERM and SIGINT: its orderly
	// shutdown; SIGABRT: its crash report, after which it kills itself
	// with the signal), so they reach the instance as they come. One the
	// guest leaves at its default action ends it, and the shim exits
	// 128+signal.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGABRT)
	defer signal.Stop(sigs)
	return k.Run(ctx, shim.Instance{
		Args:       append([]string{name}, args...),
		Env:        []string{"PWD=" + cwd},
		Stdin:      os.Stdin,
		Stdout:     stdout,
		Stderr:     stderr,
		Mounts:     mounts,
		Listeners:  listeners,
		Signals:    sigs,
		TrapReport: name + ": ",
	})
}
