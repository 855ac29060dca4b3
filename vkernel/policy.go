package vkernel

import "fmt"

// Policy decides what, besides the hash, an exec must match.
type Policy int

const (
	// PolicyHash routes by content alone: a listed file runs wherever it is.
	PolicyHash Policy = iota
	// PolicyPathHash also pins each entry to its listed paths: the same
	// bytes at another path are denied.
	PolicyPathHash
)

// ParsePolicy parses "hash" or "path+hash".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "hash", "":
		return PolicyHash, nil
	case "path+hash":
		return PolicyPathHash, nil
	}
	return 0, fmt.Errorf("unknown policy %q (want hash or path+hash)", s)
}

// String returns the policy's name as ParsePolicy accepts it.
func (p Policy) String() string {
	if p == PolicyPathHash {
		return "path+hash"
	}
	return "hash"
}
