/* SPDX-License-Identifier: GPL-2.0-only */
#include "log.h"

#include <bpf/libbpf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static enum st_log_level log_level = ST_LOG_WARN;
static int libbpf_in_setup;
static int journal; /* stderr is systemd's journal stream: lines carry "<N>" priorities */

/* syslog priorities (sd-daemon.h's SD_ERR, SD_WARNING, SD_INFO, SD_DEBUG) by level */
static const char *const journal_prefix[] = { "<3>", "<4>", "<6>", "<7>" };

/*
 * systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected stdout/stderr
 * to (systemd.exec(5)); when stderr is still that stream, journald reads a "<N>"
 * prefix as the line's priority. Anything else (a terminal, a redirect) gets none.
 */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st))
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static const char *prefix(enum st_log_level level)
{
	return journal ? journal_prefix[level] : "";
}
/* The daemon's: whose line it is ("job web"). */
static _Thread_local const char *log_context; /* the loop thread's */
/* st_log_capture_begin()'s buffer: the first error line goes there too */
static _Thread_local char *capture_buf;
static _Thread_local size_t capture_len;

/* The live status line (st_log_status), and the lock every write to stderr takes while one
 * is shown, so that a line from another thread never lands in the middle of a redraw. */
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static char status_line[1024];
static int status_on;

/* Writes one line of stderr ("\n" included), above the status line when one is shown. */
static void out_line(const char *line, size_t len)
{
	pthread_mutex_lock(&out_mu);
	if (status_on)
		fputs("\r\033[K", stderr);
	fwrite(line, 1, len, stderr);
	if (status_on)
		fprintf(stderr, "%s\033[K\r", status_line);
	fflush(stderr);
	pthread_mutex_unlock(&out_mu);
}

void st_log_status(const char *line)
{
	pthread_mutex_lock(&out_mu);
	if (line) {
		snprintf(status_line, sizeof(status_line), "%s", line);
		fprintf(stderr, "\r%s\033[K\r", status_line);
		status_on = 1;
	} else if (status_on) {
		fputs("\r\033[K", stderr);
		status_on = 0;
	}
	fflush(stderr);
	pthread_mutex_unlock(&out_mu);
}

void st_log_capture_begin(char *buf, size_t len)
{
	capture_buf = len ? buf : NULL;
	capture_len = len;
	if (capture_buf)
		capture_buf[0] = 0;
}

void st_log_capture_end(void)
{
	capture_buf = NULL;
	capture_len = 0;
}

/*
 * libbpf's messages: its warnings are real (a map that failed, a verifier
 * refusal); its info and debug output is only for -v/-vv. Its lines end in
 * '\n' already and carry their own "libbpf: " prefix.
 */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum st_log_level l = level == LIBBPF_WARN ? (libbpf_in_setup ? ST_LOG_INFO : ST_LOG_WARN) :
			      level == LIBBPF_INFO ? ST_LOG_INFO : ST_LOG_DEBUG;

	if (l > log_level)
		return 0;
	/* the agent's own line format: its context and journald priority too */
	st_log_va(l, fmt, ap);
	return 0;
}

void st_log_set_level(enum st_log_level level)
{
	log_level = level;
	journal = stderr_is_journal();
	libbpf_set_print(libbpf_print);
}

void st_log_set_verbose(int verbose)
{
	st_log_set_level(verbose >= 2 ? ST_LOG_DEBUG : verbose ? ST_LOG_INFO : ST_LOG_WARN);
}

void st_log_libbpf_setup(int in_setup)
{
	libbpf_in_setup = in_setup;
}

enum st_log_level st_log_get_level(void)
{
	return log_level;
}

void st_log_va(enum st_log_level level, const char *fmt, va_list ap)
{
	char buf[1024], line[1200];
	int n, k;

	if (level > log_level && !(level == ST_LOG_ERROR && capture_buf))
		return;
	/* One write per line, so lines from concurrent threads do not interleave. */
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	if (level == ST_LOG_ERROR && capture_buf && !capture_buf[0])
		snprintf(capture_buf, capture_len, "%s%s%.*s", log_context ? log_context : "",
			 log_context ? ": " : "", n, buf);
	if (level > log_level)
		return;
	k = snprintf(line, sizeof(line), "%sshadowtap: %s%s%.*s\n", prefix(level),
		     log_context ? log_context : "", log_context ? ": " : "", n, buf);
	if (k > 0)
		out_line(line, (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1);
}

void st_log_out(const char *fmt, ...)
{
	char buf[4096], line[4200];
	va_list ap;
	int n, k;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	k = snprintf(line, sizeof(line), "shadowtap: %s\n", buf);
	if (k > 0)
		out_line(line, (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1);
}

void st_log_set_context(const char *ctx)
{
	log_context = ctx;
}

const char *st_log_get_context(void)
{
	return log_context;
}

void st_log(enum st_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	st_log_va(level, fmt, ap);
	va_end(ap);
}

/* The bytes ch takes escaped. */
static size_t esc_len(unsigned char ch)
{
	return ch == '\\' ? 2 : ch >= 0x20 && ch < 0x7f ? 1 : 4;
}

const char *st_log_escape(char *dst, size_t dstlen, const void *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = src;
	size_t o = 0, all = 0, room = dstlen - 1;

	for (size_t i = 0; i < len && all <= room; i++)
		all += esc_len(p[i]);
	if (all > room)
		room -= 3; /* it does not fit: "..." at the end */
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = p[i];
		size_t need = esc_len(ch);

		if (o + need > room) {
			memcpy(dst + o, "...", 3);
			o += 3;
			break;
		}
		if (need == 1) {
			dst[o++] = (char)ch;
		} else if (need == 2) {
			dst[o++] = '\\';
			dst[o++] = '\\';
		} else {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[ch >> 4];
			dst[o++] = hex[ch & 15];
		}
	}
	dst[o] = 0;
	return dst;
}
