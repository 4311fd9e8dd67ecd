/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Output paths, written as root without harming the host (every command that writes a file
 * goes through here: capture's -w, shadow's --metrics, flows' files):
 *  - a regular file, or a missing path, gets its new content through a temporary file created
 *    next to it with O_EXCL (mkstemp) and renamed onto it: readers see the old file or the new
 *    one, never half of one, and a run that fails before it commits leaves the path as it was;
 *  - anything else (/dev/null and other devices, a FIFO, a socket) is written in place: never
 *    renamed over, never unlinked. FIFOs and devices are opened non-blocking where asked, so
 *    a FIFO without a reader fails (ENXIO) instead of hanging the agent;
 *  - a symlink is followed to what it names (the link stays a link);
 *  - only what this run created is ever removed (its own temporary file).
 */
#ifndef ST_OUTPUT_H
#define ST_OUTPUT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* st_output_open() flags */
#define ST_OUT_NONBLOCK 1u /* open a FIFO or device non-blocking (never wait for a reader) */
#define ST_OUT_PRIVATE 2u  /* a regular file is the owner's alone (0600: --keylog's secrets) */

struct st_output {
	char path[PATH_MAX]; /* the target, symlinks resolved */
	char tmp[PATH_MAX];  /* the temporary file until committed; "" when written in place */
	int fd;              /* -1 when closed */
	bool in_place;       /* not a regular file: written where it is */
};

/*
 * Opens path for new content (see above). Returns the fd to write to, or -errno (EISDIR for
 * a directory; ENOENT for a symlink to nothing) with o->fd = -1.
 */
int st_output_open(struct st_output *o, const char *path, unsigned flags);
/* The new content takes the target's place (fsync-free rename); nothing to do in place.
 * The fd stays open for more writes. 0 or -errno (then the temporary file is removed). */
int st_output_commit(struct st_output *o);
/* Closes the fd (if still open) without committing: removes the temporary file, never the
 * target. Safe to call twice, and after st_output_commit() (then it only closes). */
void st_output_abort(struct st_output *o);
/* After st_output_commit(): closes the fd. 0 or -errno. */
int st_output_close(struct st_output *o);

/* path's whole new content is buf (open, write, commit, close). 0 or -errno. */
int st_output_replace(const char *path, const void *buf, size_t len, unsigned flags);

/*
 * openat() for a file the agent writes in a folder of its own (flows): only ever a regular
 * file. A symlink (O_NOFOLLOW: ELOOP) or anything else already there (EEXIST for a FIFO, a
 * device, a socket; opened non-blocking so a FIFO cannot hang the run) is refused. With
 * O_CREAT | O_EXCL anything already there is refused by the open itself (EEXIST). Returns
 * the fd, or -1 with errno set, like openat().
 */
int st_output_openat(int dirfd, const char *name, int flags, mode_t mode);

#endif /* ST_OUTPUT_H */
