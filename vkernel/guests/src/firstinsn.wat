;; firstinsn: the first instruction of _start reads CLOCK_MONOTONIC; the
;; guest then writes the 8-byte timestamp to stdout. The exec benchmark
;; compares it with the time the exec was requested.
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 64)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 8))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))
