/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The daemon's configuration file: INI, read with Debian's libinih.
 *
 *	[daemon]
 *	metrics = 127.0.0.1:9464
 *	control = /run/shadowtap/ctl.sock
 *	log-level = info
 *
 *	[capture web]
 *	iface = eth0
 *	port = 80
 *	port = 443          ; a repeated key is a repeatable option given twice
 *	write = /var/lib/shadowtap/web.pcap
 *
 * One section per job, [COMMAND NAME]; its keys are the command's long options
 * without the dashes (the same optparse rows serve the command line and the
 * file, so they cannot drift). This module only reads the file into sections
 * and entries, with the line of each; the daemon checks every key against the
 * command's rows (st_config_apply) and reports "FILE:LINE: reason".
 */
#ifndef ST_CONFIG_H
#define ST_CONFIG_H

#include <stddef.h>

#include "optparse.h"

/* A line's bytes at most (a match-path regex, a list of hosts), without its '\n'. */
#define ST_CONFIG_LINE_MAX (64u << 10)
/* A file's size at most. */
#define ST_CONFIG_SIZE_MAX (16u << 20)

struct st_config_entry {
	char *key;
	char *value;
	unsigned line;
};

struct st_config_section {
	char *command;            /* "daemon", or a job's command ("capture", "shadow", ...) */
	char *name;               /* the job's name; NULL for [daemon] */
	unsigned line;
	struct st_config_entry *e;
	size_t n, cap;
};

struct st_config_file {
	char *path;
	struct st_config_section *s;
	size_t n, cap;
};

/*
 * Reads path: a regular file (opened without blocking, then checked: a FIFO, a directory, a
 * device, an empty file or one over ST_CONFIG_SIZE_MAX is refused with a line naming what it
 * is), lines of at most ST_CONFIG_LINE_MAX bytes, text (a NUL byte is refused, named). 0, or
 * -1 after one line on stderr "PATH:LINE: reason" (unreadable file, a malformed line, a
 * section that is not [daemon] or [COMMAND NAME], a duplicate job name, a second [daemon], a
 * key outside any section). Sets libinih's process-wide line knobs (config.c says why).
 */
int st_config_load(struct st_config_file *c, const char *path);
void st_config_free(struct st_config_file *c);

/* The [daemon] section, or NULL. */
const struct st_config_section *st_config_daemon(const struct st_config_file *c);

/*
 * Sets a section's entries through optparse rows: every key must name a row (else
 * "PATH:LINE: [SECTION]: unknown key 'k'"), a key given twice must be repeatable, a flag's
 * value must be true/yes/on/1 (false/no/off/0 leave it unset). 0, or -1 after one line.
 */
int st_config_apply(const struct st_config_file *c, const struct st_config_section *s,
		    const struct st_optset *sets, size_t nsets);

/* Two sections set the same keys to the same values in the same order (reload: unchanged). */
int st_config_section_equal(const struct st_config_section *a, const struct st_config_section *b);

#endif /* ST_CONFIG_H */
