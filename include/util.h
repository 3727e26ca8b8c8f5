/*
 * util.h: small helpers shared by every module: allocation that cannot
 * fail (out of memory is fatal), string and number parsing, monotonic
 * time, descriptor flags and durable directory operations.
 */
#ifndef TEMPOMX_UTIL_H
#define TEMPOMX_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
int xasprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copy with truncation; always NUL-terminates; returns strlen(src). */
size_t strlcpy_tmx(char *dst, const char *src, size_t size);
/* ASCII-only case-insensitive comparison (locale independent). */
int ascii_strcasecmp(const char *a, const char *b);
int ascii_strncasecmp(const char *a, const char *b, size_t n);
void ascii_lower(char *s);

/* Monotonic clock in microseconds (CLOCK_MONOTONIC). */
int64_t mono_usec(void);
/* Wall clock in microseconds since the epoch (CLOCK_REALTIME). */
int64_t wall_usec(void);

/* Parse "30", "30s", "5m", "4h", "2d", "1w" into seconds (>= 0).
 * Returns 0 on success, -1 on a malformed value or overflow. */
int parse_duration(const char *s, int64_t *seconds);
/* Parse "1024", "10k", "10K", "10M", "1G" (powers of 1024) into bytes. */
int parse_size(const char *s, uint64_t *bytes);
/* Parse a decimal integer within [min, max]. */
int parse_int(const char *s, int64_t min, int64_t max, int64_t *out);
/* "yes"/"no", "on"/"off", "true"/"false", "1"/"0". */
int parse_bool(const char *s, int *out);

int set_nonblock(int fd);
int set_cloexec(int fd);
/* fsync a directory by path or by descriptor. */
int fsync_dir_path(const char *path);
int fsync_dirfd(int dirfd);
/* Read size octets (a file's st_size) from fd into a new buffer with a
 * NUL after them; *got receives how many there were (fewer if the file
 * shrank). Returns the buffer, or NULL with errno on a read error. */
char *read_fd_all(int fd, size_t size, size_t *got);
/* mkdir -p with the given mode for each created component. */
int mkdir_p(const char *path, mode_t mode);

/* Format an RFC 5322 date ("Wed, 25 Nov 2026 06:19:22 +0000") of t into
 * buf (at least 40 bytes). */
void rfc5322_date(int64_t t, char *buf, size_t size);

#endif
