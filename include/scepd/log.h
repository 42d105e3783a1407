/*
 * log.h - one line per event: "ts level module message key=value ...".
 *
 * The logger is the only global beside the loaded configuration.  Lines are
 * written with a single write(2) so concurrent threads never interleave.
 * Never pass a secret (challenge, key, decrypted CSR attribute) to it.
 */
#ifndef SCEPD_LOG_H
#define SCEPD_LOG_H

#include <stddef.h>

enum scep_log_level { SCEP_LOG_DEBUG = 0, SCEP_LOG_INFO, SCEP_LOG_WARN, SCEP_LOG_ERROR };

/* Lines below this level are dropped (default INFO). */
void scep_log_set_level(enum scep_log_level lvl);
/* Redirect to a file descriptor (default 2). */
void scep_log_set_fd(int fd);

void scep_log(enum scep_log_level lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Copy untrusted bytes into dst as a log-safe token: printable ASCII other
 * than space, quote and backslash is kept, everything else becomes \xHH.
 * Output is truncated (with "...") to fit dst; dst is always terminated.
 */
void scep_log_escape(char *dst, size_t dstlen, const void *src, size_t srclen);

#endif
