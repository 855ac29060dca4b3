package vkernel

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// protectedTree is a host directory no guest may see: the AOT cache, which
// holds the compiled code and the host key that seals it. A guest that
// could write there could swap native code in; one that could read the key
// could forge it.
type protectedTree struct {
	root string
	// rootID is the root's identity; ancestors are the identities of the
	// root and every directory above it. Identities (device, inode), not
	// names, so symbolic links and bind mounts of the same directory are
	// caught too.
	rootID    fileID
	ancestors map[fileID]string
}

type fileID struct{ dev, ino uint64 }

func idOf(name string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		return fileID{}, &os.PathError{Op: "stat", Path: name, Err: err}
	}
	return fileID{st.Dev, st.Ino}, nil
}

// protect records root (created if missing, mode 0700) and its ancestors.
func protect(root string) (*protectedTree, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, err
	}
	t := &protectedTree{root: abs, ancestors: map[fileID]string{}}
	for dir := abs; ; dir = filepath.Dir(dir) {
		id, err := idOf(dir)
		if err != nil {
			return nil, err
		}
		if dir == abs {
			t.rootID = id
		}
		t.ancestors[id] = dir
		if dir == "/" {
			return t, nil
		}
	}
}

// exposedBy returns why mounting the host directory would show the tree to
// a guest, or "" when it would not: the directory is the tree's root or
// lies above it (the guest could walk down to it) or beneath it.
func (t *protectedTree) exposedBy(host string) string {
	if t == nil {
		return ""
	}
	id, err := idOf(host)
	if err != nil {
		return "" // the mount fails on its own, naming the error
	}
	if dir, ok := t.ancestors[id]; ok {
		if dir == t.root {
			return fmt.Sprintf("it is the AOT cache %s, which holds the compiled code and its host key", t.root)
		}
		return fmt.Sprintf("it holds the AOT cache %s (compiled code and its host key) beneath it", t.root)
	}
	real, err := filepath.EvalSymlinks(host)
	if err != nil {
		return ""
	}
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		if id, err := idOf(dir); err == nil && id == t.rootID {
			return fmt.Sprintf("it lies inside the AOT cache %s, which holds the compiled code and its host key", t.root)
		}
		if dir == "/" || dir == "." {
			return ""
		}
	}
}
