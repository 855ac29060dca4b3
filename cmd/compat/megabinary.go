package main

import (
	root "github.com/compat-project/compat"

	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/compat-project/compat/vkernel"
	"github.com/compat-project/compat/vkernel/megabinary"
)

func megabinaryCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: compat megabinary build|verify|sign|inspect ... (run: compat help)\n")
		return exitUsage
	}
	switch args[0] {
	case "build":
		return mbBuild(args[1:], stdout, stderr)
	case "verify":
		return mbVerify(args[1:], stdout, stderr)
	case "sign":
		return mbSign(args[1:], stdout, stderr)
	case "inspect":
		return mbInspect(args[1:], stdout, stderr)
	}
	return fail(stderr, fmt.Errorf("unknown megabinary command %q (want build, verify, sign or inspect)", args[0]))
}

func mbBuild(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("megabinary build", "megabinary build -spec SPEC -out MB [-key KEY]", stderr)
	spec := fs.String("spec", "", "JSON build spec (entries with their wasm files)")
	out := fs.String("out", "", "megabinary to write")
	key := fs.String("key", "", "private key to sign with after verification (optional)")
	auditFile := fs.String("audit", "", "audit log to append a refused spec to (default COMPAT_CACHE/audit.jsonl)")
	if err := fs.Parse(args); err != nil || *spec == "" || *out == "" || fs.NArg() != 0 {
		return usageError(fs, err)
	}
	s, err := megabinary.LoadSpec(*spec)
	if err != nil {
		return refuseSpec(stderr, *spec, *auditFile, err)
	}
	f, err := s.Build()
	if err != nil {
		return refuseSpec(stderr, *spec, *auditFile, fmt.Errorf("spec %s: %w", *spec, err))
	}
	for _, se := range s.Entries {
		if se.Snapshot == nil {
			continue
		}
		// The snapshot start: the entry's initialisation runs once, here.
		t0 := time.Now()
		if f, err = vkernel.AddSnapshot(context.Background(), f, se.Name, *se.Snapshot); err != nil {
			return fail(stderr, fmt.Errorf("spec %s: %w", *spec, err))
		}
		e := f.Manifest.Entry(se.Name)
		fmt.Fprintf(stdout, "snapshot of %s: module %s (%d bytes), made in %s\n", se.Name, e.Snapshot.Module[:16],
			len(f.Module(e.Snapshot.Module)), time.Since(t0).Round(time.Millisecond))
	}
	if *key != "" {
		if err := verifyAndSign(f, *key); err != nil {
			return fail(stderr, err)
		}
	}
	if err := f.WriteFile(*out); err != nil {
		return fail(stderr, err)
	}
	state := "unsigned"
	if f.Signed() {
		state = "signed by key " + f.KeyID()[:16]
	}
	fmt.Fprintf(stdout, "wrote %s: %d entries, %d modules, digest %s, %s\n", *out, len(f.Manifest.Entries), len(f.Manifest.Modules), f.Digest(), state)
	return exitOK
}

func verifyAndSign(f *megabinary.File, keyFile string) error {
	key, err := megabinary.ReadPrivateKey(keyFile)
	if err != nil {
		return err
	}
	if err := vkernel.Verify(context.Background(), f, root.CacheRoot()); err != nil {
		return fmt.Errorf("refusing to sign a megabinary that does not verify: %w", err)
	}
	f.Sign(key)
	return nil
}

func mbVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("megabinary verify", "megabinary verify [-pubkey PUB] MB", stderr)
	pubFile := fs.String("pubkey", "", "public key the signature must verify with (optional)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return usageError(fs, err)
	}
	name := fs.Arg(0)
	f, err := megabinary.ReadFile(name)
	if err != nil {
		return fail(stderr, err)
	}
	if *pubFile != "" {
		pub, err := megabinary.ReadPublicKey(*pubFile)
		if err != nil {
			return fail(stderr, err)
		}
		if err := f.Verify(pub); err != nil {
			return fail(stderr, fmt.Errorf("megabinary %s: %w", name, err))
		}
	}
	if err := vkernel.Verify(context.Background(), f, root.CacheRoot()); err != nil {
		return fail(stderr, fmt.Errorf("megabinary %s: %w", name, err))
	}
	hashes := 0
	for _, e := range f.Manifest.Entries {
		hashes += len(e.Hashes)
	}
	sig := "unsigned"
	switch {
	case f.Signed() && *pubFile != "":
		sig = "signature verified (key " + f.KeyID()[:16] + ")"
	case f.Signed():
		sig = "signed by key " + f.KeyID()[:16] + " (not checked: give -pubkey)"
	}
	fmt.Fprintf(stdout, "%s: ok: %d entries, %d hashes each routing to exactly its entry, %d modules compiled with imports only from the host surface; %s\n",
		name, len(f.Manifest.Entries), hashes, len(f.Manifest.Modules), sig)
	return exitOK
}

func mbSign(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("megabinary sign", "megabinary sign -key KEY [-out OUT] MB", stderr)
	key := fs.String("key", "", "private key file")
	out := fs.String("out", "", "where to write the signed megabinary (default: in place)")
	if err := fs.Parse(args); err != nil || *key == "" || fs.NArg() != 1 {
		return usageError(fs, err)
	}
	name := fs.Arg(0)
	f, err := megabinary.ReadFile(name)
	if err != nil {
		return fail(stderr, err)
	}
	if err := verifyAndSign(f, *key); err != nil {
		return fail(stderr, fmt.Errorf("megabinary %s: %w", name, err))
	}
	if *out == "" {
		*out = name
	}
	if err := f.WriteFile(*out); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "signed %s with key %s\n", *out, f.KeyID()[:16])
	return exitOK
}

func mbInspect(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("megabinary inspect", "megabinary inspect [-json] MB", stderr)
	asJSON := fs.Bool("json", false, "print the manifest as JSON")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return usageError(fs, err)
	}
	f, err := megabinary.ReadFile(fs.Arg(0))
	if err != nil {
		return fail(stderr, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Digest   string               `json:"digest"`
			KeyID    string               `json:"key_id,omitempty"`
			Manifest *megabinary.Manifest `json:"manifest"`
		}{f.Digest(), f.KeyID(), &f.Manifest}); err != nil {
			return fail(stderr, err)
		}
		return exitOK
	}
	fmt.Fprintf(stdout, "megabinary %s\n  format %d, digest %s\n", fs.Arg(0), f.Manifest.Format, f.Digest())
	if f.Signed() {
		fmt.Fprintf(stdout, "  signed by key %s\n", f.KeyID())
	} else {
		fmt.Fprintf(stdout, "  unsigned\n")
	}
	fmt.Fprintf(stdout, "modules:\n")
	for _, m := range f.Manifest.Modules {
		fmt.Fprintf(stdout, "  %s  %d bytes\n", m.Digest, m.Size)
	}
	fmt.Fprintf(stdout, "entries:\n")
	for _, e := range f.Manifest.Entries {
		fmt.Fprintf(stdout, "  %s: module %s, start %s\n", e.Name, e.Module[:16], e.StartExport())
		for _, h := range e.Hashes {
			fmt.Fprintf(stdout, "    hash  %s\n", h)
		}
		for _, p := range e.Paths {
			fmt.Fprintf(stdout, "    path  %s\n", p)
		}
		if len(e.Args) > 0 {
			fmt.Fprintf(stdout, "    args  %s\n", strings.Join(e.Args, " "))
		}
		if len(e.Env) > 0 {
			fmt.Fprintf(stdout, "    env   %s\n", strings.Join(e.Env, " "))
		}
		r := e.Resources
		var mounts []string
		for _, m := range r.Mounts {
			s := m.Guest
			if m.ReadOnly {
				s += " (ro)"
			}
			mounts = append(mounts, s)
		}
		fmt.Fprintf(stdout, "    resources: mounts [%s], listeners %d, connect [%s], bind [%s], processes %d, threads %d\n",
			strings.Join(mounts, ", "), r.Listeners, orLoopback(r.Connect), orLoopback(r.Bind), r.Processes, r.Threads)
		if sn := e.Snapshot; sn != nil {
			var ms []string
			for _, m := range sn.Mounts {
				s := m.Guest
				if m.ReadOnly {
					s += " (ro)"
				}
				ms = append(ms, s)
			}
			fmt.Fprintf(stdout, "    snapshot: module %s, form %s, start %s, made by %s with argv0 %s, args [%s], env [%s], mounts [%s], wazero %s\n",
				sn.Module[:16], sn.Form, sn.Export, sn.Init, sn.Argv0, strings.Join(sn.Args, " "), strings.Join(sn.Env, " "), strings.Join(ms, ", "), sn.Wazero)
		}
	}
	return exitOK
}

// refuseSpec reports a spec that does not build (nothing is written) and
// appends an audit record naming it and its SHA-256: a megabinary is what
// decides which code may run, so a refused build is recorded as a refused
// exec is.
func refuseSpec(stderr io.Writer, spec, auditFile string, err error) int {
	rec := vkernel.AuditRecord{Time: time.Now().UTC(), Action: "build", Path: spec, Decision: "deny", Reason: err.Error()}
	if data, rerr := os.ReadFile(spec); rerr == nil {
		rec.Hash = megabinary.SHA256(data)
	}
	if auditFile == "" {
		auditFile = filepath.Join(root.CacheRoot(), "audit.jsonl")
	}
	if aerr := appendAudit(auditFile, rec); aerr != nil {
		fmt.Fprintf(stderr, "compat: audit log %s: %v\n", auditFile, aerr)
	}
	return fail(stderr, fmt.Errorf("%w; nothing written (recorded in %s)", err, auditFile))
}

// appendAudit appends one JSON line to the audit log at path.
func appendAudit(path string, rec vkernel.AuditRecord) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	line, err := json.Marshal(rec)
	if err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// orLoopback lists a resources.connect or resources.bind list, naming the
// default an empty one stands for.
func orLoopback(prefixes []string) string {
	if len(prefixes) == 0 {
		return "loopback"
	}
	return strings.Join(prefixes, ", ")
}
