/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Table-driven options: one table per group (the live target, the shadow
 * engine, a command's own), each row the option's long name, value kind,
 * range and help line. The same rows parse the command line (getopt_long,
 * built from the tables), print --help, and will read the daemon's config
 * file (a key is a long name, a repeated key a repeatable option), so the
 * two can never drift.
 *
 *	static const struct st_opt capture_opts[] = {
 *		ST_OPT_STRING("write", 'w', struct capture, out, "FILE", "pcap output"),
 *		ST_OPT_DOUBLE("duration", 'd', struct capture, duration, "SEC", 0.001, 1e9,
 *			      "stop after SEC seconds"),
 *	};
 *	struct st_optset sets[] = { { capture_opts, N, &c } };
 *	rc = st_optset_parse(sets, 1, "capture", argc, argv, &first_arg);
 *
 * Errors are one line on stderr naming the option; st_optset_parse() returns
 * ST_EXIT_USAGE for them, -1 after printing --help, 0 otherwise.
 */
#ifndef ST_OPTPARSE_H
#define ST_OPTPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum st_opt_kind {
	ST_OPTK_FLAG = 0, /* no value: sets a bool to true */
	ST_OPTK_COUNT,    /* no value: adds one to an int (-v -v) */
	ST_OPTK_STRING,   /* const char * (the argv or config string itself) */
	ST_OPTK_UINT,     /* an unsigned integer in [min, max], stored in 1, 2, 4 or 8 bytes */
	ST_OPTK_DOUBLE,   /* a double in [min, max] */
	ST_OPTK_CHOICE,   /* one of choices[] (NULL-terminated), its index stored as an int */
	ST_OPTK_FUNC,     /* fn(obj, value, err) parses and stores it */
	ST_OPTK_SIZE,     /* bytes with a K/M/G/T suffix, in [min, max] (a uint64_t) */
};

/* st_opt.flags */
#define ST_OPTF_REPEAT 0x1u /* may be given more than once (each value is handed over) */
#define ST_OPTF_POW2 0x2u   /* UINT: a power of two */
#define ST_OPTF_MIB 0x4u    /* UINT: given in MiB, stored in bytes (range checked in MiB) */
#define ST_OPTF_KIB 0x8u    /* UINT: given in KiB, stored in bytes */
#define ST_OPTF_NOVAL 0x10u /* FUNC: takes no value (fn gets NULL) */
#define ST_OPTF_OPTVAL 0x20u /* FUNC: the value is optional, given as --name=VALUE (fn gets
			      * NULL without one); help shows --name[=ARG] */
#define ST_OPTF_SECONDS 0x40u /* DOUBLE: a duration, in seconds, or with a unit: 500ms, 90s,
			       * 15m, 1h, 2d (ST_OPT_SECONDS) */

struct st_opt {
	const char *name;     /* long name (--name), and the config key */
	int short_name;       /* 'x' for -x, or 0 */
	uint8_t kind;         /* enum st_opt_kind */
	uint8_t flags;        /* ST_OPTF_* */
	uint8_t size;         /* bytes of the destination (UINT) */
	uint32_t off;         /* destination offset in the group's object */
	const char *arg;      /* the value's placeholder in --help ("SEC"), NULL for flags */
	const char *help;     /* help text; '\n' starts a continuation line */
	double min, max;      /* UINT, DOUBLE */
	const char *const *choices; /* CHOICE */
	/* FUNC: parse val into obj; 0, or -1 with a reason in err (no option name), or -1 with
	 * err left empty after printing its own one-line message */
	int (*fn)(void *obj, const char *val, char *err, size_t errlen);
};

#define ST_OPT_FLAG(n, s, T, f, h) \
	{ .name = n, .short_name = s, .kind = ST_OPTK_FLAG, .off = offsetof(T, f), .help = h }
#define ST_OPT_COUNT(n, s, T, f, h) \
	{ .name = n, .short_name = s, .kind = ST_OPTK_COUNT, .off = offsetof(T, f), .help = h }
#define ST_OPT_STRING(n, s, T, f, a, h)                                                     \
	{ .name = n, .short_name = s, .kind = ST_OPTK_STRING, .off = offsetof(T, f), .arg = a, \
	  .help = h }
#define ST_OPT_UINT(n, s, T, f, a, lo, hi, fl, h)                                            \
	{ .name = n, .short_name = s, .kind = ST_OPTK_UINT, .flags = fl, .off = offsetof(T, f), \
	  .size = sizeof(((T *)0)->f), .arg = a, .min = lo, .max = hi, .help = h }
#define ST_OPT_DOUBLE(n, s, T, f, a, lo, hi, h)                                             \
	{ .name = n, .short_name = s, .kind = ST_OPTK_DOUBLE, .off = offsetof(T, f), .arg = a, \
	  .min = lo, .max = hi, .help = h }
/* A duration in seconds (a double): "90", "90s", "1.5m", "15m", "1h", "500ms", "2d". */
#define ST_OPT_SECONDS(n, s, T, f, lo, hi, h)                                                 \
	{ .name = n, .short_name = s, .kind = ST_OPTK_DOUBLE, .flags = ST_OPTF_SECONDS,        \
	  .off = offsetof(T, f), .arg = "SEC", .min = lo, .max = hi, .help = h }
#define ST_OPT_CHOICE(n, s, T, f, a, ch, h)                                                 \
	{ .name = n, .short_name = s, .kind = ST_OPTK_CHOICE, .off = offsetof(T, f), .arg = a, \
	  .choices = ch, .help = h }
#define ST_OPT_SIZE(n, s, T, f, a, lo, hi, h)                                               \
	{ .name = n, .short_name = s, .kind = ST_OPTK_SIZE, .off = offsetof(T, f), .arg = a,   \
	  .min = (double)(lo), .max = (double)(hi), .help = h }
#define ST_OPT_FUNC(n, s, a, fl, func, h)                                                    \
	{ .name = n, .short_name = s, .kind = ST_OPTK_FUNC, .flags = fl, .arg = a, .fn = func, \
	  .help = h }

/* A table and the object its rows write into. A set with a title is tuning or a
 * specialist's group: --help and the manual list the untitled sets first (the options most
 * runs use), then each title as a heading over its sets' rows (sets of one title together). */
struct st_optset {
	const struct st_opt *opts;
	size_t n;
	void *obj;
	const char *title;
};

#define ST_OPTSET(tab, o) { tab, sizeof(tab) / sizeof((tab)[0]), o, NULL }
#define ST_OPTSET_T(tab, o, t) { tab, sizeof(tab) / sizeof((tab)[0]), o, t }

/* The headings commands share (one spelling, so that sets of one kind group together). */
#define ST_OPT_TITLE_TAP "Kernel capture tuning"
#define ST_OPT_TITLE_LIMITS "Memory and queue limits"
#define ST_OPT_TITLE_COMPARE "Tap compare thresholds and limits"
#define ST_OPT_TITLE_REDACT "Redaction"
#define ST_OPT_TITLE_KAFKA "Kafka"
#define ST_OPT_TITLE_LOAD "Load test (--rate, --steps)"

/* Sets one option from its value (NULL for FLAG/COUNT). 0, or -1 after one line on stderr
 * naming the option as where says it was given ("--port", "shadow.conf:12: port"). */
int st_opt_set(const struct st_opt *o, void *obj, const char *val, const char *where);
/* The row named name in the sets, and its set; NULL if none. */
const struct st_opt *st_optset_find(const struct st_optset *sets, size_t nsets, const char *name,
				    const struct st_optset **set);

/*
 * Parses argv (argv[0] is the command's name) with -h/--help built in. On success
 * *first_arg is the index of the first positional argument. Returns 0, -1 when --help was
 * printed (usage_head, then every row), or ST_EXIT_USAGE after one line on stderr.
 */
int st_optset_parse(const struct st_optset *sets, size_t nsets, const char *cmd,
		    const char *usage_head, int argc, char **argv, int *first_arg);

/* Parses a duration ("90", "90s", "1.5m", "15m", "1h", "500ms", "2d") into seconds. 0, or -1
 * (not a duration: nothing said). */
int st_optparse_seconds(const char *s, double *out);

/* The candidate nearest to word (a typo's edit distance: at most a third of its length, at
 * least 1), for "did you mean ...?"; NULL when none is near. */
const char *st_optparse_nearest(const char *word, const char *const *cands, size_t n);

/* The rows' help, aligned, as --help prints them: untitled sets first, then each title as a
 * heading over its sets. */
void st_optset_help(FILE *f, const struct st_optset *sets, size_t nsets);

#endif /* ST_OPTPARSE_H */
