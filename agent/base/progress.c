/* SPDX-License-Identifier: GPL-2.0-only */
/* The --stats line and the terminal's live status line (progress.h). */
#include "progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "loop.h"

void st_brief_init(struct st_brief *b)
{
	b->n = 0;
}

void st_brief_add(struct st_brief *b, const char *name, uint64_t v, unsigned flags)
{
	if (b->n >= ST_BRIEF_MAX) {
		/* a programming error: a command's brief is fixed */
		pr_warn("internal: brief full, '%s' left out", name);
		return;
	}
	b->e[b->n++] = (struct st_brief_ent){ name, v, (uint8_t)flags };
}

uint64_t st_brief_value(const struct st_brief *b, const char *name)
{
	for (size_t i = 0; i < b->n; i++)
		if (!strcmp(b->e[i].name, name))
			return b->e[i].v;
	return 0;
}

const char *st_progress_bytes(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KB", "MB", "GB", "TB", "PB" };
	double d = (double)v;
	unsigned u = 0;

	while (d >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		d /= 1024;
		u++;
	}
	if (!u)
		snprintf(buf, len, "%" PRIu64 " B", v);
	else if (d < 9.95)
		snprintf(buf, len, "%.1f %s", d, unit[u]);
	else
		snprintf(buf, len, "%.0f %s", d, unit[u]);
	return buf;
}

/* A rate per second: one decimal below 10. */
static void rate_str(double r, bool bytes, char *buf, size_t len)
{
	char h[32];

	if (bytes)
		snprintf(buf, len, "%s/s", st_progress_bytes((uint64_t)(r + 0.5), h, sizeof(h)));
	else if (r < 9.95)
		snprintf(buf, len, "%.1f/s", r);
	else
		snprintf(buf, len, "%.0f/s", r);
}

const char *st_brief_format(const struct st_brief *b, const struct st_brief *prev, uint64_t dt_ns,
			    char *buf, size_t len)
{
	size_t o = 0;
	bool in_sub = false;

#define ADD(...) (o += (size_t)snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__))
	if (len)
		buf[0] = 0;
	for (size_t i = 0; i < b->n; i++) {
		const struct st_brief_ent *e = &b->e[i];
		bool bytes = e->flags & ST_BRIEF_BYTES;
		char v[48], r[48];

		if (e->flags & ST_BRIEF_SUB) {
			if (!e->v)
				continue;
			ADD("%s%s %s", in_sub ? ", " : " (", e->name,
			    bytes ? st_progress_bytes(e->v, v, sizeof(v)) : (snprintf(v, sizeof(v), "%" PRIu64,
										      e->v), v));
			in_sub = true;
			continue;
		}
		if (in_sub)
			ADD(")");
		in_sub = false;
		if (bytes)
			st_progress_bytes(e->v, v, sizeof(v));
		else if (e->flags & ST_BRIEF_PCT)
			snprintf(v, sizeof(v), "%" PRIu64 "%%", e->v);
		else if ((e->flags & ST_BRIEF_SECS) && e->v >= 3600)
			snprintf(v, sizeof(v), "%" PRIu64 "h%02" PRIu64 "m", e->v / 3600, e->v / 60 % 60);
		else if ((e->flags & ST_BRIEF_SECS) && e->v >= 60)
			snprintf(v, sizeof(v), "%" PRIu64 "m%02" PRIu64 "s", e->v / 60, e->v % 60);
		else if (e->flags & ST_BRIEF_SECS)
			snprintf(v, sizeof(v), "%" PRIu64 "s", e->v);
		else
			snprintf(v, sizeof(v), "%" PRIu64, e->v);
		if ((e->flags & ST_BRIEF_RATE) && dt_ns) {
			/* the same entry of the previous reading (zeros before the first) */
			uint64_t was = prev && i < prev->n && prev->e[i].name == e->name ? prev->e[i].v : 0;
			double rate = e->v >= was ? (double)(e->v - was) * 1e9 / (double)dt_ns : 0;

			rate_str(rate, bytes, r, sizeof(r));
			ADD("%s%s %s (%s)", o ? "; " : "", e->name, r, v);
		} else {
			ADD("%s%s %s", o ? "; " : "", e->name, v);
		}
	}
	if (in_sub)
		ADD(")");
#undef ADD
	if (o >= len && len)
		buf[len - 1] = 0;
	return buf;
}

void st_progress_init(struct st_progress *p, double stats_s, bool status, const char *what,
		      uint64_t now_ns)
{
	memset(p, 0, sizeof(*p));
	p->stats_s = stats_s;
	p->status = status;
	p->what = what;
	p->line_ns = p->status_ns = p->prev_ns = p->sprev_ns = now_ns;
}

#define STATUS_EVERY_NS 1000000000ull

static bool line_due(const struct st_progress *p, uint64_t now)
{
	return p->stats_s > 0 && now - p->line_ns >= (uint64_t)(p->stats_s * 1e9);
}

bool st_progress_due(const struct st_progress *p, uint64_t now_ns)
{
	return line_due(p, now_ns) || (p->status && now_ns - p->status_ns >= STATUS_EVERY_NS);
}

void st_progress_show(struct st_progress *p, const struct st_brief *b, uint64_t now_ns)
{
	char text[1024];

	if (line_due(p, now_ns)) {
		char ts[32];
		time_t t = (time_t)(st_loop_realtime_ns() / 1000000000ull);
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		/* rates over the interval since the last line */
		st_brief_format(b, p->have_prev ? &p->prev : NULL, now_ns - p->prev_ns, text,
				sizeof(text));
		st_log_out("%s %s %s", p->label ? p->label : "stats", ts, text);
		p->line_ns = now_ns;
		p->prev = *b;
		p->prev_ns = now_ns;
		p->have_prev = true;
	}
	if (p->status && now_ns - p->status_ns >= STATUS_EVERY_NS) {
		char line[1100];

		/* the status line's rates are over its own second */
		st_brief_format(b, p->have_sprev ? &p->sprev : NULL, now_ns - p->sprev_ns, text,
				sizeof(text));
		snprintf(line, sizeof(line), "%s: %s", p->what, text);
		st_log_status(line);
		p->shown = true;
		p->status_ns = now_ns;
		p->sprev = *b;
		p->sprev_ns = now_ns;
		p->have_sprev = true;
	}
}

void st_progress_end(struct st_progress *p)
{
	if (p->shown)
		st_log_status(NULL);
	p->shown = false;
}
