/* SPDX-License-Identifier: GPL-2.0-only */
/* Output paths (see output.h). */
#include "output.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static void out_reset(struct st_output *o)
{
	memset(o, 0, sizeof(*o));
	o->fd = -1;
}

int st_output_open(struct st_output *o, const char *path, unsigned flags, mode_t mode)
{
	const char *base;
	struct stat st;
	bool exists;
	int fd, err;

	out_reset(o);
	if (strlen(path) >= sizeof(o->path))
		return -ENAMETOOLONG;
	strcpy(o->path, path);
	/* lstat: the last component is never followed (output.h) */
	exists = !lstat(o->path, &st);
	if (!exists && errno != ENOENT)
		return -errno;
	if (exists && S_ISLNK(st.st_mode))
		return -ELOOP;
	if (exists && S_ISDIR(st.st_mode))
		return -EISDIR;
	if (exists && !S_ISREG(st.st_mode)) {
		/* /dev/null, a FIFO, a terminal: written where it is, never replaced; O_NOFOLLOW in
		 * case a link took its place since the lstat */
		fd = open(o->path, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW |
					   (flags & ST_OUT_NONBLOCK ? O_NONBLOCK : 0));
		if (fd < 0)
			return -errno;
		o->fd = fd;
		o->in_place = true;
		return fd;
	}
	/* the temporary file goes in the path's own folder: rename() then replaces the entry
	 * named, whatever it became meanwhile, and never what a link there points to */
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
	fd = mkostemp(o->tmp, O_CLOEXEC); /* O_EXCL: never someone else's file; mode 0600 */
	if (fd < 0) {
		err = -errno;
		o->tmp[0] = 0;
		return err;
	}
	if (flags & ST_OUT_PRIVATE)
		mode = 0600; /* secrets: the owner alone, whatever the old file's mode or --output-mode */
	if (exists) {
		/* the new content keeps the old file's owner (and mode unless told), as a rewrite in
		 * place would */
		if (!mode)
			mode = st.st_mode & 07777;
		if (fchown(fd, st.st_uid, st.st_gid)) {
			/* not root: the file is ours */
		}
	}
	if (mode && fchmod(fd, mode)) {
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
	/* it was a regular file or nothing when opened; something else since (a device or a
	 * symlink put there meanwhile) is not replaced either */
	if (!lstat(o->path, &st) && !S_ISREG(st.st_mode)) {
		err = S_ISDIR(st.st_mode) ? -EISDIR : S_ISLNK(st.st_mode) ? -ELOOP : -EEXIST;
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

int st_output_replace(const char *path, const void *buf, size_t len, unsigned flags,
		      mode_t mode)
{
	struct st_output o;
	const char *p = buf;
	int err = st_output_open(&o, path, flags, mode);

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

int st_output_write(const char *path, int (*fill)(void *ctx, FILE *f), void *ctx, unsigned flags,
		    mode_t mode)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int err;

	if (!f)
		return -ENOMEM;
	err = fill(ctx, f);
	if (fclose(f) && !err)
		err = -ENOMEM;
	if (!err)
		err = st_output_replace(path, text, len, flags, mode);
	free(text);
	return err;
}

int st_output_check(const char *path, unsigned flags, mode_t mode)
{
	struct st_output o;
	struct stat st;
	int r;

	if (!lstat(path, &st) && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) &&
	    !S_ISLNK(st.st_mode))
		return 0;
	r = st_output_open(&o, path, flags, mode);
	st_output_abort(&o);
	return r < 0 ? r : 0;
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

const char *st_output_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err == ELOOP)
		return "a symbolic link: output paths are never followed (name the file itself)";
	return strerror(err);
}

int st_output_opendir(const char *cmd, const char *path, bool force, mode_t mode)
{
	mode_t dmode = mode ? mode | (mode & 0444) >> 2 : 0700;
	struct dirent *e;
	DIR *d;
	int fd;

	if (mkdir(path, dmode) && errno != EEXIST) {
		pr_err("%s: cannot create %s: %s", cmd, path, strerror(errno));
		return -1;
	}
	/* O_NOFOLLOW: a link planted where the folder goes is refused, like one for a file */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		struct stat st;
		int err = errno;

		/* a link fails as ENOTDIR with O_DIRECTORY: say what it is */
		if (!lstat(path, &st) && S_ISLNK(st.st_mode))
			err = ELOOP;
		pr_err("%s: cannot open %s: %s", cmd, path, st_output_strerror(err));
		return -1;
	}
	if (force)
		return fd;
	d = fdopendir(dup(fd));
	if (!d) {
		pr_err("%s: cannot read %s: %s", cmd, path, strerror(errno));
		close(fd);
		return -1;
	}
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			pr_err("%s: %s is not empty (use --force to write into it anyway)", cmd,
			       path);
			closedir(d);
			close(fd);
			return -1;
		}
	}
	closedir(d);
	return fd;
}

/* The folder part of path ("." for a bare name) into buf. */
static void dir_of(const char *path, char *buf, size_t cap)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(buf, cap, ".");
	else if (slash == path)
		snprintf(buf, cap, "/");
	else
		snprintf(buf, cap, "%.*s", (int)(slash - path), path);
}

bool st_output_same(const char *a, const char *b)
{
	const char *na = strrchr(a, '/'), *nb = strrchr(b, '/');
	char da[PATH_MAX], db[PATH_MAX];
	struct stat sa, sb;

	if (!lstat(a, &sa) && !S_ISREG(sa.st_mode) && !S_ISLNK(sa.st_mode) && !S_ISDIR(sa.st_mode))
		return false; /* written in place: /dev/null, a FIFO */
	if (!strcmp(a, b))
		return true;
	na = na ? na + 1 : a;
	nb = nb ? nb + 1 : b;
	if (strcmp(na, nb))
		return false;
	dir_of(a, da, sizeof(da));
	dir_of(b, db, sizeof(db));
	if (stat(da, &sa) || stat(db, &sb))
		return !strcmp(da, db);
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int st_output_distinct(const char *const *paths, const char *const *opts, size_t n, char *err,
		       size_t errlen)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n && paths[i]; j++)
			if (paths[j] && st_output_same(paths[i], paths[j])) {
				snprintf(err, errlen, "%s and %s name one file (%s): one would "
					 "overwrite the other", opts[i], opts[j], paths[j]);
				return -1;
			}
	return 0;
}

static int opt_output_mode(void *obj, const char *val, char *err, size_t errlen)
{
	unsigned long m;
	char *end;

	errno = 0;
	m = strtoul(val, &end, 8);
	if (errno || end == val || *end || *val == '-' || m > 0777 || (m & 0600) != 0600) {
		snprintf(err, errlen, "'%s' is not an octal mode from 0600 to 0777 (the owner reads "
			 "and writes)", val);
		return -1;
	}
	*(mode_t *)obj = (mode_t)m;
	return 0;
}

const struct st_opt st_output_opts[] = {
	ST_OPT_FUNC("output-mode", 0, "MODE", 0, opt_output_mode,
		    "mode of the files created (octal; default 0600: they\n"
		    "hold traffic); a file replaced keeps its own unless given"),
};
const size_t st_output_opts_n = sizeof(st_output_opts) / sizeof(st_output_opts[0]);
