package hostabi

import (
	"github.com/tetratelabs/wazero/api"
)

// maxIovecs bounds an iovec array, as IOV_MAX does on Linux.
const maxIovecs = 1024

// view returns the guest memory [off, off+n) or false when any byte of it
// lies outside the memory. The slice aliases guest memory.
func view(m api.Memory, off, n uint32) ([]byte, bool) {
	if m == nil {
		return nil, false
	}
	return m.Read(off, n)
}

// putU32 writes v at off, or returns EFAULT.
func putU32(m api.Memory, off, v uint32) Errno {
	if m == nil || !m.WriteUint32Le(off, v) {
		return EFAULT
	}
	return ESUCCESS
}

// putU64 writes v at off, or returns EFAULT.
func putU64(m api.Memory, off uint32, v uint64) Errno {
	if m == nil || !m.WriteUint64Le(off, v) {
		return EFAULT
	}
	return ESUCCESS
}

// readString copies the guest string at [off, off+n). NUL bytes are refused
// because every host call that takes a string hands it to a C-string API.
func readString(m api.Memory, off, n uint32) (string, Errno) {
	if n > 1<<16 {
		return "", ENAMETOOLONG
	}
	b, ok := view(m, off, n)
	if !ok {
		return "", EFAULT
	}
	for _, c := range b {
		if c == 0 {
			return "", EINVAL
		}
	}
	return string(b), ESUCCESS
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
func le64(b []byte) uint64 { return uint64(le32(b)) | uint64(le32(b[4:]))<<32 }

func put16(b []byte, v uint16) { b[0], b[1] = byte(v), byte(v>>8) }
func put32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
func put64(b []byte, v uint64) { put32(b, uint32(v)); put32(b[4:], uint32(v>>32)) }
