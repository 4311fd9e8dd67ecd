/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Output paths, written as root without harming the host (every command that writes a file
 * goes through here: -w, -o, --report, --report-json, --diffs, --metrics, flows' and receive's
 * files, the daemon's rotation; docs/ARCHITECTURE.md, "Output files"):
 *  - a regular file, or a missing path, gets its new content through a temporary file created
 *    in the path's own folder with O_EXCL (mkstemp) and renamed onto it: readers see the old
 *    file or the new one, never half of one, and a run that fails before it commits leaves the
 *    path as it was;
 *  - anything else (/dev/null and other devices, a FIFO, a socket) is written in place: never
 *    renamed over, never unlinked. FIFOs and devices are opened non-blocking where asked, so
 *    a FIFO without a reader fails (ENXIO) instead of hanging the agent;
 *  - a symlink as the last component is never followed: refused (-ELOOP, said by
 *    st_output_strerror()), when opened and again when committed (a link planted by another
 *    user in /tmp must not make root replace or write the file it names);
 *  - a file this run creates gets mode 0600 (its content is traffic), or --output-mode's; a
 *    file it replaces keeps its mode (or gets --output-mode's) and its owner;
 *  - only what this run created is ever removed (its own temporary file).
 */
#ifndef ST_OUTPUT_H
#define ST_OUTPUT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "optparse.h"

/* st_output_open() flags */
#define ST_OUT_NONBLOCK 1u /* open a FIFO or device non-blocking (never wait for a reader) */
#define ST_OUT_PRIVATE 2u  /* a regular file is the owner's alone (0600: --keylog's secrets) */

/* The mode of the files a run creates when --output-mode does not say (mode 0 below). */
#define ST_OUTPUT_MODE_DEFAULT 0600

struct st_output {
	char path[PATH_MAX]; /* the target, as given */
	char tmp[PATH_MAX];  /* the temporary file until committed; "" when written in place */
	int fd;              /* -1 when closed */
	bool in_place;       /* not a regular file: written where it is */
};

/*
 * Opens path for new content (see above). mode: --output-mode's, or 0 (a new file 0600, a
 * replaced one keeps its mode). Returns the fd to write to, or -errno (EISDIR for a
 * directory, ELOOP for a symlink) with o->fd = -1.
 */
int st_output_open(struct st_output *o, const char *path, unsigned flags, mode_t mode);
/* The new content takes the target's place (fsync-free rename); nothing to do in place.
 * The fd stays open for more writes. 0 or -errno (then the temporary file is removed). */
int st_output_commit(struct st_output *o);
/* Closes the fd (if still open) without committing: removes the temporary file, never the
 * target. Safe to call twice, and after st_output_commit() (then it only closes). */
void st_output_abort(struct st_output *o);
/* After st_output_commit(): closes the fd. 0 or -errno. */
int st_output_close(struct st_output *o);

/* path's whole new content is buf (open, write, commit, close). 0 or -errno. */
int st_output_replace(const char *path, const void *buf, size_t len, unsigned flags,
		      mode_t mode);

/* path's whole new content is what fill writes into f (a memory stream), through
 * st_output_replace(). 0, fill's own error (-errno), -ENOMEM, or the write's -errno. */
int st_output_write(const char *path, int (*fill)(void *ctx, FILE *f), void *ctx, unsigned flags,
		    mode_t mode);
/* Whether path can be written as st_output_replace() would write it (a folder, a symlink, a
 * folder without write access fail here), leaving it as it is; a device or FIFO is not
 * opened (a FIFO's reader would read an empty file). 0 or -errno. */
int st_output_check(const char *path, unsigned flags, mode_t mode);

/* What an output error means, for "PATH: <this>": strerror(), but ELOOP (a symlink refused)
 * says so in words. */
const char *st_output_strerror(int err);

/*
 * openat() for a file the agent writes in a folder of its own (flows): only ever a regular
 * file. A symlink (O_NOFOLLOW: ELOOP) or anything else already there (EEXIST for a FIFO, a
 * device, a socket; opened non-blocking so a FIFO cannot hang the run) is refused. With
 * O_CREAT | O_EXCL anything already there is refused by the open itself (EEXIST). Returns
 * the fd, or -1 with errno set, like openat().
 */
int st_output_openat(int dirfd, const char *name, int flags, mode_t mode);

/*
 * -o DIR of flows and receive: opens the folder, creating it (mode: the files' --output-mode
 * with x where r, or 0700), never through a symlink (ELOOP, as for a file); refuses a
 * non-empty one without force. The fd, or -1 after one line naming cmd.
 */
int st_output_opendir(const char *cmd, const char *path, bool force, mode_t mode);

/*
 * Two outputs of one command on the same file would overwrite each other: true when a and b
 * name the same entry (the same string, or the same name in the same folder, however
 * written), unless it exists and is not a regular file nor a symlink (/dev/null twice is
 * fine). A missing folder is compared by its name as written.
 */
bool st_output_same(const char *a, const char *b);
/* A command's n outputs (paths[i] NULL: not given; opts[i] its option, for the message): 0
 * when no two are the same file, else -1 with "OPT and OPT name one file ..." in err (a
 * usage error: one would overwrite the other). */
int st_output_distinct(const char *const *paths, const char *const *opts, size_t n, char *err,
		       size_t errlen);

/*
 * --output-mode MODE (octal, 0600..0777 with the owner's read and write bits): the mode of the
 * files a command creates. One row (optparse.h), its object a mode_t (0 until given).
 */
extern const struct st_opt st_output_opts[];
extern const size_t st_output_opts_n;

#endif /* ST_OUTPUT_H */
