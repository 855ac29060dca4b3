/* wasm32-wasi has no syslog: the constants Redis configures with, and
 * calls that do nothing (syslog-enabled stays "no"). */
#ifndef COMPAT_SYSLOG_H
#define COMPAT_SYSLOG_H
#define LOG_EMERG 0
#define LOG_ALERT 1
#define LOG_CRIT 2
#define LOG_ERR 3
#define LOG_WARNING 4
#define LOG_NOTICE 5
#define LOG_INFO 6
#define LOG_DEBUG 7
#define LOG_PID 0x01
#define LOG_CONS 0x02
#define LOG_NDELAY 0x08
#define LOG_NOWAIT 0x10
#define LOG_USER (1 << 3)
#define LOG_LOCAL0 (16 << 3)
#define LOG_LOCAL1 (17 << 3)
#define LOG_LOCAL2 (18 << 3)
#define LOG_LOCAL3 (19 << 3)
#define LOG_LOCAL4 (20 << 3)
#define LOG_LOCAL5 (21 << 3)
#define LOG_LOCAL6 (22 << 3)
#define LOG_LOCAL7 (23 << 3)
static inline void openlog(const char *ident, int opt, int fac) { (void)ident; (void)opt; (void)fac; }
static inline void closelog(void) {}
static inline void syslog(int prio, const char *fmt, ...) { (void)prio; (void)fmt; }
#endif
