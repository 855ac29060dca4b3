package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// The wire protocol (README.md beside this file): one SOCK_SEQPACKET
// connection per request; each message is one packet holding one JSON
// object with a "type"; fds travel as SCM_RIGHTS with the exec message.

// Version is the protocol version a request carries; the server refuses
// any other.
const Version = 1

// MaxMessage bounds a message's size in bytes: the exec request with its
// argv, environment, cwd and mounts. Larger requests are refused; the
// client refuses to send them.
const MaxMessage = 128 << 10

// Message types.
const (
	typeExec    = "exec"    // client → server, with 4 fds: file, stdin, stdout, stderr
	typeSignal  = "signal"  // client → server, once started
	typeStarted = "started" // server → client: the request runs
	typeRefused = "refused" // server → client: it does not, and never will
	typeExit    = "exit"    // server → client: how it ended
)

// requestFDs is how many fds an exec message carries.
const requestFDs = 4

// Refusal kinds: why a request did not run. Kinds marked retryable
// refuse a request that a later attempt (to the same or a restarted
// service) may run.
const (
	// RefusedDenied: the vkernel's policy refused the file (exit 126).
	RefusedDenied = "denied"
	// RefusedBadRequest: the message or its fds were malformed.
	RefusedBadRequest = "bad-request"
	// RefusedPeer: the connecting user may not use the service.
	RefusedPeer = "peer"
	// RefusedStopping: the service is stopping (retryable).
	RefusedStopping = "stopping"
	// RefusedBusy: too many requests wait for a slot (retryable).
	RefusedBusy = "busy"
	// RefusedFailed: the instance could not be started.
	RefusedFailed = "failed"
)

// mountMsg is a mount a request asks for.
type mountMsg struct {
	Guest    []byte `json:"guest"`
	Host     []byte `json:"host"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// message is every message; which fields are set depends on Type.
// Byte strings (paths, argv, environment) are []byte, base64 in JSON, so
// that any byte but NUL travels unchanged.
type message struct {
	Type    string `json:"type"`
	Version int    `json:"version,omitempty"`

	// exec
	Path   []byte     `json:"path,omitempty"`
	Args   [][]byte   `json:"args,omitempty"`
	Env    [][]byte   `json:"env,omitempty"`
	Cwd    []byte     `json:"cwd,omitempty"`
	Mounts []mountMsg `json:"mounts,omitempty"`

	// signal
	Signal int `json:"signal,omitempty"`

	// started
	Pid   int    `json:"pid,omitempty"`
	Entry string `json:"entry,omitempty"`

	// refused
	Kind   string `json:"kind,omitempty"`
	Error  string `json:"error,omitempty"`
	Hash   string `json:"hash,omitempty"`
	Reason string `json:"reason,omitempty"`

	// exit: the guest's status, or the signal that ended it with Code
	// 128 plus it.
	Code     int `json:"code"`
	ExitSig  int `json:"exit_signal,omitempty"`
	Duration int `json:"duration_us,omitempty"`
}

// send writes one message with fds.
func send(c *net.UnixConn, m *message, fds ...int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > MaxMessage {
		return fmt.Errorf("%s message is %d bytes, more than the limit of %d", m.Type, len(b), MaxMessage)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	_, _, err = c.WriteMsgUnix(b, oob, nil)
	return err
}

// errClosed is receive's answer when the peer closed the connection.
var errClosed = errors.New("connection closed by the peer")

// receive reads one message and the fds that came with it (close-on-exec,
// the caller's to close, also on error). A packet larger than MaxMessage,
// fds lost to a short control buffer, and more than requestFDs fds are
// errors.
func receive(c *net.UnixConn) (*message, []int, error) {
	buf := make([]byte, MaxMessage+1)
	oob := make([]byte, unix.CmsgSpace((requestFDs+4)*4))
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
	var fds []int
	if oobn > 0 {
		if msgs, perr := unix.ParseSocketControlMessage(oob[:oobn]); perr == nil {
			for _, m := range msgs {
				if got, err := unix.ParseUnixRights(&m); err == nil {
					fds = append(fds, got...)
				}
			}
		}
	}
	if err != nil {
		return nil, fds, err
	}
	if n == 0 && oobn == 0 {
		return nil, fds, errClosed
	}
	if flags&unix.MSG_TRUNC != 0 || n > MaxMessage {
		return nil, fds, fmt.Errorf("message larger than the limit of %d bytes", MaxMessage)
	}
	if flags&unix.MSG_CTRUNC != 0 {
		return nil, fds, fmt.Errorf("more file descriptors than the %d a request carries (some were lost)", requestFDs)
	}
	m := &message{}
	if err := json.Unmarshal(buf[:n], m); err != nil {
		return nil, fds, fmt.Errorf("message is not a JSON object of the protocol: %v", err)
	}
	return m, fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// forwardable are the signals a client may send its instance: those a
// user or a runner ends or pokes a program with. SIGKILL and SIGSTOP are
// not among them: a client ends its instance by closing the connection.
var forwardable = map[syscall.Signal]bool{
	unix.SIGHUP: true, unix.SIGINT: true, unix.SIGQUIT: true, unix.SIGTERM: true,
	unix.SIGUSR1: true, unix.SIGUSR2: true, unix.SIGWINCH: true, unix.SIGCONT: true,
}
