/* SPDX-License-Identifier: GPL-2.0-only */
#include "log.h"

#include <bpf/libbpf.h>
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
	st_vlog(l, fmt, ap);
	return 0;
}

void st_log_set_level(enum st_log_level level)
{
	log_level = level;
	journal = stderr_is_journal();
	libbpf_set_print(libbpf_print);
}

void st_log_libbpf_setup(int in_setup)
{
	libbpf_in_setup = in_setup;
}

enum st_log_level st_log_get_level(void)
{
	return log_level;
}

void st_vlog(enum st_log_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	int n;

	if (level > log_level)
		return;
	/* One write per line, so lines from concurrent threads do not interleave. */
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	fprintf(stderr, "%sshadowtap: %s%s%.*s\n", prefix(level), log_context ? log_context : "",
		log_context ? ": " : "", n, buf);
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
	st_vlog(level, fmt, ap);
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
