;; threads.wat: a wasm32-wasi-threads guest in the shape LLVM gives one
;; (env.memory imported shared, wasi.thread-spawn, wasi_thread_start),
;; for the vkernel's thread tests. MODE, NTHREADS, ITERS and YIELD are
;; replaced by the test:
;;   0 sum:   NTHREADS threads add 1, ITERS times each, to an atomic
;;            counter and to a word under a futex mutex; the main thread
;;            waits on the "done" word like a condition variable, checks
;;            both sums and prints "ok" (exit 10 or 11: a sum is wrong,
;;            12: a spawn failed)
;;   1 exit:  a thread calls proc_exit(3) while main waits forever
;;   2 trap:  a thread traps while main waits forever
;;   3 limit: main spawns threads that wait forever until a spawn fails;
;;            exits with the number spawned if it failed with -EAGAIN
;;            (-6), else 100
;;   4 spin:  threads spin without host calls while main waits forever
;; YIELD is put in main's wait loop: "" or a host call.
;; Memory: 0 counter, 4 done, 8 mutex, 12 guarded sum, 16 gate,
;; 24 iovec, 32 text, 40 bytes written.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func $sched_yield (result i32)))
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 16 shared))
  (global $mode i32 (i32.const MODE))
  (global $n i32 (i32.const NTHREADS))
  (global $k i32 (i32.const ITERS))

  (func $lock
    (block $got
      (loop $try
        (br_if $got (i32.eqz (i32.atomic.rmw.cmpxchg (i32.const 8) (i32.const 0) (i32.const 1))))
        (drop (memory.atomic.wait32 (i32.const 8) (i32.const 1) (i64.const -1)))
        (br $try))))

  (func $unlock
    (i32.atomic.store (i32.const 8) (i32.const 0))
    (drop (memory.atomic.notify (i32.const 8) (i32.const 1))))

  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (local $i i32)
    (if (i32.eq (global.get $mode) (i32.const 1)) (then (call $proc_exit (i32.const 3))))
    (if (i32.eq (global.get $mode) (i32.const 2)) (then unreachable))
    (if (i32.eq (global.get $mode) (i32.const 3)) (then
      (loop $w
        (drop (memory.atomic.wait32 (i32.const 16) (i32.const 0) (i64.const -1)))
        (br $w))))
    (if (i32.eq (global.get $mode) (i32.const 4)) (then (loop $spin (br $spin))))
    (loop $l
      (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
      (call $lock)
      (i32.store (i32.const 12) (i32.add (i32.load (i32.const 12)) (i32.const 1)))
      (call $unlock)
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (global.get $k))))
    (drop (i32.atomic.rmw.add (i32.const 4) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 4) (i32.const -1))))

  (func (export "_start")
    (local $i i32) (local $t i32) (local $d i32)
    (if (i32.eq (global.get $mode) (i32.const 3)) (then
      (loop $s
        (local.set $t (call $spawn (local.get $i)))
        (if (i32.gt_s (local.get $t) (i32.const 0)) (then
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $s))))
      (if (i32.ne (local.get $t) (i32.const -6)) (then (call $proc_exit (i32.const 100))))
      (call $proc_exit (local.get $i))))
    (loop $s
      (local.set $t (call $spawn (local.get $i)))
      (if (i32.le_s (local.get $t) (i32.const 0)) (then (call $proc_exit (i32.const 12))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $s (i32.lt_u (local.get $i) (global.get $n))))
    (loop $w
      (local.set $d (i32.atomic.load (i32.const 4)))
      (if (i32.lt_u (local.get $d) (global.get $n)) (then
        (drop (memory.atomic.wait32 (i32.const 4) (local.get $d) (i64.const -1)))
        YIELD
        (br $w))))
    (if (i32.ne (i32.atomic.load (i32.const 0)) (i32.mul (global.get $n) (global.get $k)))
      (then (call $proc_exit (i32.const 10))))
    (if (i32.ne (i32.load (i32.const 12)) (i32.mul (global.get $n) (global.get $k)))
      (then (call $proc_exit (i32.const 11))))
    (i32.store (i32.const 32) (i32.const 0x000a6b6f))
    (i32.store (i32.const 24) (i32.const 32))
    (i32.store (i32.const 28) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 24) (i32.const 1) (i32.const 40)))))
