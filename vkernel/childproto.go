package vkernel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/compat-project/compat/vkernel/internal/hashcache"
	"github.com/compat-project/compat/vkernel/internal/hostabi"
	"golang.org/x/sys/unix"
)

// A child host process starts in two steps. It is started (ForkExec) with
// a bootSpec: what it needs to open the megabinary, check it and load one
// entry's code, the costly part of a start. Then it waits on its request
// socket for a runSpec: what to run, with the file to exec (or the memory
// to fork from) and the guest's fds, passed as SCM_RIGHTS. A process that
// is started for a spawn or fork gets its runSpec at once; a warm one
// (warm.go) was started ahead of need and gets it when the guest asks.

// Host fds of a child process, fixed: 0-2 are the host process's own (its
// Go runtime reports on 2).
const (
	bootFD     = 3 // the bootSpec, a memfd (childSpecEnv names it)
	auditFD    = 4 // audit records to the parent, a pipe
	lifelineFD = 5 // closed by the parent to ask the child to end, a pipe
	tableFD    = 6 // the tree's process table, a memfd
	requestFD  = 7 // the runSpec arrives here, a SOCK_SEQPACKET socket
)

// bootSpec is what a child host process is started with. It names one
// entry of the megabinary, whose code the child loads before it knows
// what it will run.
type bootSpec struct {
	ParentPid   int      `json:"parent_pid"`
	Command     []string `json:"command"`
	Megabinary  string   `json:"megabinary"`
	Digest      string   `json:"digest"`
	TrustedKeys [][]byte `json:"trusted_keys"`
	CacheDir    string   `json:"cache_dir,omitempty"`
	Policy      Policy   `json:"policy"`
	Entry       string   `json:"entry"`
	Depth       int      `json:"depth"`
	TableSlots  int      `json:"table_slots"`
	// HostCallsDir is the parent's Options.HostCallsDir: the child's
	// counts go there too.
	HostCallsDir string `json:"hostcalls_dir,omitempty"`
	NoSnapshot   bool   `json:"no_snapshot,omitempty"`
	// Share, when above 1, makes the child a shared host (share.go): it
	// runs up to Share requests at once, each arriving with a control
	// socket of its own (runSpec.ControlFD), and keeps taking them.
	Share int `json:"share,omitempty"`
}

// runSpec is what a started child runs. Fd fields are indices into the
// fds that come with it (-1: none).
type runSpec struct {
	// A spawn: the file to run, routed again by its hash in the child,
	// and what the audit log says of it.
	ExecFD    int    `json:"exec_fd"`
	GuestPath string `json:"guest_path,omitempty"`
	HostPath  string `json:"host_path,omitempty"`
	Parent    string `json:"parent,omitempty"`
	// Interpreters are the #! interpreters the spawn of GuestPath went
	// through (spawnOrigin).
	Interpreters []string `json:"interpreters,omitempty"`

	Args   rawStrings              `json:"args"`
	Env    rawStrings              `json:"env"`
	Mounts []Mount                 `json:"mounts"`
	Files  []hostabi.InheritedFile `json:"files"`
	Cwd    rawStrings              `json:"cwd,omitempty"` // none or one
	HasCwd bool                    `json:"has_cwd,omitempty"`

	// A fork: the parent's memory (a memfd) and where to start.
	Fork         *forkSpec `json:"fork,omitempty"`
	Dispositions []uint8   `json:"dispositions,omitempty"`

	// ControlFD, for a shared host's request, is the request's control
	// socket (share.go); -1 or absent otherwise.
	ControlFD *int `json:"control_fd,omitempty"`

	// FDs is how many fds come with the spec.
	FDs int `json:"fds"`
	// Known is the parent's digest of the file to run when its content
	// can no longer change (frozen): the child takes it instead of
	// reading the file again, as the parent's own hash cache would.
	Known *knownDigest `json:"known,omitempty"`
}

// knownDigest is a file's SHA-256 with the identity it was taken under.
type knownDigest struct {
	Hash string        `json:"hash"`
	Key  hashcache.Key `json:"key"`
}

type forkSpec struct {
	Fn           uint32 `json:"fn"`
	Arg          uint32 `json:"arg"`
	MemoryFD     int    `json:"memory_fd"`
	MemorySize   uint64 `json:"memory_size"`
	StackPointer uint64 `json:"stack_pointer"`
}

// fdsPerMessage bounds the fds of one message (the kernel's SCM_MAX_FD is
// 253); a runSpec with more fds comes in several.
const fdsPerMessage = 250

// sendRun sends spec and its fds on the request socket sock: the spec in a
// memfd, the first fd of the first message.
func sendRun(sock int, spec *runSpec, fds []int) error {
	spec.FDs = len(fds)
	js, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	specFD, err := memfdWith("vkernel-run-spec", js)
	if err != nil {
		return err
	}
	defer unix.Close(specFD)
	msg := append([]int{specFD}, fds[:min(len(fds), fdsPerMessage-1)]...)
	rest := fds[len(msg)-1:]
	for {
		if err := sendFDs(sock, msg); err != nil {
			return err
		}
		if len(rest) == 0 {
			return nil
		}
		msg, rest = rest[:min(len(rest), fdsPerMessage)], rest[min(len(rest), fdsPerMessage):]
	}
}

func sendFDs(sock int, fds []int) error {
	for {
		err := unix.Sendmsg(sock, []byte{'f'}, unix.UnixRights(fds...), nil, unix.MSG_NOSIGNAL)
		if err != unix.EINTR {
			return err
		}
	}
}

// errNoRun is receiveRun's answer when the parent closed the socket
// without sending a spec: it did not need this child.
var errNoRun = errors.New("the parent closed the request socket")

// receiveRun waits for the runSpec on the request socket and returns it
// with its fds (close-on-exec, the child's own).
func receiveRun(sock int) (*runSpec, []int, error) {
	var fds []int
	fail := func(err error) (*runSpec, []int, error) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, nil, err
	}
	var spec *runSpec
	for spec == nil || len(fds) < spec.FDs {
		got, err := receiveFDs(sock)
		if err != nil {
			return fail(err)
		}
		if spec == nil {
			if len(got) == 0 {
				return fail(errors.New("run spec: the first message carries no spec"))
			}
			spec = &runSpec{}
			js, err := io.ReadAll(io.NewSectionReader(fdReader(got[0]), 0, 1<<30))
			unix.Close(got[0])
			got = got[1:]
			if err == nil {
				err = json.Unmarshal(js, spec)
			}
			if err != nil {
				fds = append(fds, got...)
				return fail(fmt.Errorf("run spec: %w", err))
			}
		}
		fds = append(fds, got...)
	}
	if len(fds) != spec.FDs {
		return fail(fmt.Errorf("run spec: %d fds came, the spec says %d", len(fds), spec.FDs))
	}
	return spec, fds, nil
}

func receiveFDs(sock int) ([]int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(fdsPerMessage*4))
	for {
		n, oobn, flags, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("request socket: %w", err)
		}
		if n == 0 && oobn == 0 {
			return nil, errNoRun
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, fmt.Errorf("request socket: %w", err)
		}
		var fds []int
		for _, m := range msgs {
			got, err := unix.ParseUnixRights(&m)
			if err != nil {
				return nil, fmt.Errorf("request socket: %w", err)
			}
			fds = append(fds, got...)
		}
		if flags&unix.MSG_CTRUNC != 0 {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return nil, errors.New("request socket: fds were lost (control message truncated)")
		}
		return fds, nil
	}
}
