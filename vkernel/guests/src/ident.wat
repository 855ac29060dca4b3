;; ident: writes its identity line to stdout and exits 0. Variants differ
;; only in the identity string, which is how dispatcher tests prove which
;; module ran.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "IDENT\n")
  (func (export "_start")
    ;; iovec at 0: buf=64, len=length of the identity line
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const LEN))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))
