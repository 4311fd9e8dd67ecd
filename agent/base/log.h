/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Logging: one prefix ("shadowtap: "), four levels, printf format checking,
 * and libbpf's own messages routed through the same levels (as xdp-tools'
 * lib/util/logging.h does). Everything goes to stderr, one line per call;
 * under systemd, when stderr is the journal (JOURNAL_STREAM), each line starts
 * with its syslog priority ("<3>" error, "<4>" warning, "<6>" info, "<7>"
 * debug), which journald strips and records.
 *
 * Infrastructure code (tap, pcap writer, engines) says what failed in its own
 * terms ("interface eth9: no such interface"); only commands speak in terms of
 * command-line flags.
 *
 * The level (and whether stderr is the journal) is process-wide state, the
 * only such state in the agent: it is set once, from -v/-q, before any
 * component starts.
 */
#ifndef ST_LOG_H
#define ST_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum st_log_level {
	ST_LOG_ERROR = 0, /* the operation failed */
	ST_LOG_WARN,      /* it goes on, but something is wrong (loss, a refused option) */
	ST_LOG_INFO,      /* what the agent does (attach mode, targets): shown with -v */
	ST_LOG_DEBUG,     /* libbpf's debug output and per-event detail: shown with -vv */
};

/* Messages at or below level are printed (default ST_LOG_WARN). Also routes libbpf's and
 * looks whether stderr is the journal. */
void st_log_set_level(enum st_log_level level);
/* The level -v asks for (the count of st_run_opts.verbose): none warn, -v info, -vv debug. */
void st_log_set_verbose(int verbose);
enum st_log_level st_log_get_level(void);

/*
 * While setting up (open, load, attach), the agent reports every failure
 * itself in one line, so libbpf's warnings there are detail shown with -v;
 * afterwards they are real warnings. tap.c brackets its setup with this.
 */
void st_log_libbpf_setup(int in_setup);

void st_log(enum st_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void st_log_va(enum st_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/*
 * The command's own output on stderr, not a message: the start line, the stats lines, the
 * summary ("shadowtap: " + the text), printed at every level (-q is the command's to apply).
 * One write per line.
 */
void st_log_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A live status line at the bottom of stderr (a terminal's: the caller checks isatty), drawn
 * with a carriage return and erase-line; every line printed meanwhile (messages, output)
 * erases it first and draws it again after itself, so lines never mix with it. NULL erases
 * it for good (before the summary). Any thread.
 */
void st_log_status(const char *line);

/*
 * The first error line (ST_LOG_ERROR, its context included, without the "shadowtap: "
 * prefix) logged by this thread between begin and end is also copied into buf (the daemon's
 * reload answers `ctl reload` with why it rejected a file). The lines are printed as always.
 */
void st_log_capture_begin(char *buf, size_t len);
void st_log_capture_end(void);

/* The daemon: lines name whose they are ("job web": "shadowtap: job web: ..."), NULL for
 * none; the string must live until the next call. */
void st_log_set_context(const char *ctx);
const char *st_log_get_context(void);

/*
 * A string from outside (a stream's header, traffic, another process's name) made safe to
 * print: printable ASCII as it is, a backslash doubled, every other byte (control bytes and
 * the ESC of a terminal's escape sequences, DEL, bytes >= 0x80) as \xNN, so that nothing it
 * holds acts on a terminal or splits a log line. len bytes of src (NUL bytes included);
 * what does not fit in dst ends with "...". dst has room for at least 8 bytes. Returns dst.
 */
const char *st_log_escape(char *dst, size_t dstlen, const void *src, size_t len);

#define pr_err(...) st_log(ST_LOG_ERROR, __VA_ARGS__)
#define pr_warn(...) st_log(ST_LOG_WARN, __VA_ARGS__)
#define pr_info(...) st_log(ST_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) st_log(ST_LOG_DEBUG, __VA_ARGS__)

#endif /* ST_LOG_H */
