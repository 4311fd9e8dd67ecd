/* SPDX-License-Identifier: GPL-2.0-only */
/* Output paths (see output.h). */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void out_reset(struct st_output *o)
{
	memset(o, 0, sizeof(*o));
	o->fd = -1;
}

/* The target: path itself, or what a symlink at path names. */
static int resolve(struct st_output *o, const char *path)
{
	struct stat st;

	if (strlen(path) >= sizeof(o->path))
		return -ENAMETOOLONG;
	if (!lstat(path, &st) && S_ISLNK(st.st_mode)) {
		/* a link to nothing: where would the file go? refuse rather than guess */
		if (!realpath(path, o->path))
			return -errno;
	} else {
		strcpy(o->path, path);
	}
	return 0;
}

int st_output_open(struct st_output *o, const char *path, unsigned flags)
{
	const char *base;
	struct stat st;
	bool exists;
	mode_t mode;
	int fd, err;

	out_reset(o);
	err = resolve(o, path);
	if (err)
		return err;
	exists = !stat(o->path, &st);
	if (!exists && errno != ENOENT)
		return -errno;
	if (exists && S_ISDIR(st.st_mode))
		return -EISDIR;
	if (exists && !S_ISREG(st.st_mode)) {
		/* /dev/null, a FIFO, a terminal: written where it is, never replaced */
		fd = open(o->path, O_WRONLY | O_CLOEXEC | O_NOCTTY |
					   (flags & ST_OUT_NONBLOCK ? O_NONBLOCK : 0));
		if (fd < 0)
			return -errno;
		o->fd = fd;
		o->in_place = true;
		return fd;
	}
	base = strrchr(o->path, '/');
	if (base)
		err = snprintf(o->tmp, sizeof(o->tmp), "%.*s/.%s.XXXXXX", (int)(base - o->path),
			       o->path, base + 1);
	else
		err = snprintf(o->tmp, sizeof(o->tmp), ".%s.XXXXXX", o->path);
	if (err < 0 || (size_t)err >= sizeof(o->tmp)) {
		o->tmp[0] = 0;
		return -ENAMETOOLONG;
	}
	fd = mkostemp(o->tmp, O_CLOEXEC); /* O_EXCL: never someone else's file */
	if (fd < 0) {
		err = -errno;
		o->tmp[0] = 0;
		return err;
	}
	if (flags & ST_OUT_PRIVATE) {
		mode = 0600; /* secrets: the owner alone, whatever the old file's mode was */
	} else if (exists) {
		/* the new content keeps the old file's mode and owner, as a rewrite in place would */
		mode = st.st_mode & 07777;
		if (fchown(fd, st.st_uid, st.st_gid)) {
			/* not root: the file is ours, with the mode below */
		}
	} else {
		mode = umask(0);
		umask(mode);
		mode = 0666 & ~mode;
	}
	if (fchmod(fd, mode)) {
		/* mkstemp's 0600 stays: safe, if less readable */
	}
	o->fd = fd;
	return fd;
}

int st_output_commit(struct st_output *o)
{
	struct stat st;
	int err;

	if (o->in_place || !o->tmp[0])
		return 0;
	/* it was a regular file or nothing when opened; something else since (a device put
	 * there meanwhile) is not replaced either */
	if (!lstat(o->path, &st) && !S_ISREG(st.st_mode)) {
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EEXIST;
		goto fail;
	}
	if (rename(o->tmp, o->path)) {
		err = -errno;
		goto fail;
	}
	o->tmp[0] = 0;
	return 0;
fail:
	unlink(o->tmp);
	o->tmp[0] = 0;
	return err;
}

void st_output_abort(struct st_output *o)
{
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	if (o->tmp[0])
		unlink(o->tmp); /* ours (O_EXCL), never the target */
	o->tmp[0] = 0;
}

int st_output_close(struct st_output *o)
{
	int err = 0;

	if (o->fd >= 0 && close(o->fd))
		err = -errno;
	o->fd = -1;
	st_output_abort(o); /* not committed: nothing of it stays */
	return err;
}

int st_output_replace(const char *path, const void *buf, size_t len, unsigned flags)
{
	struct st_output o;
	const char *p = buf;
	int err = st_output_open(&o, path, flags);

	if (err < 0)
		return err;
	while (len) {
		ssize_t n = write(o.fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO; /* EAGAIN: a FIFO whose reader is slow */
			st_output_abort(&o);
			return err;
		}
		p += n;
		len -= (size_t)n;
	}
	err = st_output_commit(&o);
	if (err) {
		st_output_abort(&o);
		return err;
	}
	return st_output_close(&o);
}

int st_output_openat(int dirfd, const char *name, int flags, mode_t mode)
{
	struct stat st;
	int fd = openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, mode);

	if (fd < 0)
		return -1;
	if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
		return fd; /* this call made it: a regular file (one fstat less per flows file) */
	if (fstat(fd, &st)) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		errno = EEXIST; /* a FIFO, a device, a socket where a flow's file goes */
		return -1;
	}
	/* O_NONBLOCK only guarded the open (a FIFO); a regular file ignores it */
	return fd;
}
