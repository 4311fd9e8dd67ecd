/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Progress, for people: the few counters that matter for a command, as `--stats SEC` prints
 * them (one timestamped line on stderr every SEC) and as the live status line of a terminal
 * shows them (redrawn every second at the bottom of stderr when it is a TTY; lines logged
 * meanwhile go above it, log.h). The full counter set stays in the summary line and
 * --metrics (stats.h): this is a reading, not a record.
 *
 * A command fills a struct st_brief each time (the same entries in the same order): a count,
 * or a count whose rate matters (ST_BRIEF_RATE: shown per second since the previous
 * reading), in bytes (ST_BRIEF_BYTES: human sizes, "312 KB", "1.2 MB/s"; KB = 1024 bytes),
 * and sub-entries (ST_BRIEF_SUB) that break the entry before them down, shown only when not
 * 0 ("dropped 3 (down 2, queue 1)"). The line:
 *
 *	shadowtap: stats 2026-05-01T12:00:05Z requests 120/s (1234); dropped 3 (down 3); queue 12 KB
 *
 * Entries are separated by "; ". Single-threaded: the event loop's.
 */
#ifndef ST_PROGRESS_H
#define ST_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_BRIEF_MAX 32

/* st_brief_ent.flags */
#define ST_BRIEF_RATE 0x1u  /* a counter: its rate per second, and its total */
#define ST_BRIEF_BYTES 0x2u /* a number of bytes: a human size */
#define ST_BRIEF_SUB 0x4u   /* part of the entry before it: "(name v, ...)", only when not 0 */
#define ST_BRIEF_PCT 0x8u   /* a percentage: "45%" */
#define ST_BRIEF_SECS 0x10u /* a duration in seconds: "1m20s" */

struct st_brief_ent {
	const char *name;
	uint64_t v;
	uint8_t flags;
};

struct st_brief {
	size_t n;
	struct st_brief_ent e[ST_BRIEF_MAX];
};

void st_brief_init(struct st_brief *b);
void st_brief_add(struct st_brief *b, const char *name, uint64_t v, unsigned flags);
/* The value of name, or 0 (tests, a command deriving one figure from another). */
uint64_t st_brief_value(const struct st_brief *b, const char *name);

/* v bytes as a person reads them: "512 B", "1.2 KB", "312 KB", "45 MB", "1.1 GB" (KB = 1024
 * bytes; one decimal below 10). Returns buf. */
const char *st_progress_bytes(uint64_t v, char *buf, size_t len);

struct st_progress {
	double stats_s;             /* --stats SEC: a line every SEC (0: none) */
	bool status;                /* the live status line is on (a terminal, not -q) */
	const char *what;           /* the status line's lead: the command's name */
	const char *label;          /* the line's first word: "stats" (NULL), or the daemon's
				     * "stats job=NAME" */
	uint64_t line_ns, status_ns; /* when the last line / status was made */
	struct st_brief prev;       /* the reading the lines' rates are measured from, and when */
	uint64_t prev_ns;
	bool have_prev;
	struct st_brief sprev;      /* ... the status line's */
	uint64_t sprev_ns;
	bool have_sprev;
	bool shown;                 /* the status line is on the screen */
};

/* stats_s: --stats (0: no lines); status: a terminal wants the live line (the caller asks
 * isatty(2) and -q). now: when the run started (rates are from then). */
void st_progress_init(struct st_progress *p, double stats_s, bool status, const char *what,
		      uint64_t now_ns);
/* A reading is due now (a --stats line or the status line's redraw): the caller fills a
 * brief and calls st_progress_show(). */
bool st_progress_due(const struct st_progress *p, uint64_t now_ns);
/* Prints what is due of b: the --stats line, the status line. */
void st_progress_show(struct st_progress *p, const struct st_brief *b, uint64_t now_ns);
/* The run ends: the status line goes (the summary comes next). */
void st_progress_end(struct st_progress *p);

/* The entries of b as the line shows them ("requests 120/s (1234); queue 12 KB"), rates
 * measured from prev over dt_ns (prev NULL: no rates yet, totals only). Returns buf. */
const char *st_brief_format(const struct st_brief *b, const struct st_brief *prev, uint64_t dt_ns,
			    char *buf, size_t len);

#endif /* ST_PROGRESS_H */
