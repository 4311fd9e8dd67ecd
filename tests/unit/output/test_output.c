/* SPDX-License-Identifier: GPL-2.0-only */
/* Output paths (agent/output/output.c): what is renamed onto, what is written in place, what stays,
 * symlinks refused, modes, two outputs on one file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output.h"

struct fx {
	char dir[64];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/st-output-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

static const char *at(struct fx *f, const char *name)
{
	static char buf[4][256];
	static int n;
	char *p = buf[n++ % 4];

	snprintf(p, 256, "%s/%s", f->dir, name);
	return p;
}

static void put(const char *path, const char *s)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(s, fp);
	fclose(fp);
}

static char *get(const char *path)
{
	static char buf[256];
	FILE *fp = fopen(path, "r");
	size_t n;

	if (!fp)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = 0;
	fclose(fp);
	return buf;
}

/* Entries of the folder besides the given ones: temporary files left behind. */
static int others(struct fx *f, const char *a, const char *b)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s' | grep -vx -e '%s' -e '%s')\"", f->dir, a,
		 b);
	return system(cmd) != 0;
}

static void t_regular_replaced(void **state)
{
	struct fx *f = *state;
	const char *p = at(f, "m.prom");
	struct stat a, b;

	put(p, "old\n");
	chmod(p, 0640);
	assert_int_equal(stat(p, &a), 0);
	assert_int_equal(st_output_replace(p, "new\n", 4, ST_OUT_NONBLOCK, 0), 0);
	assert_int_equal(stat(p, &b), 0);
	assert_string_equal(get(p), "new\n");
	assert_int_not_equal(a.st_ino, b.st_ino); /* renamed onto, not rewritten */
	assert_int_equal(b.st_mode & 07777, 0640);
	/* a missing path is created */
	assert_int_equal(st_output_replace(at(f, "n.prom"), "x", 1, 0, 0), 0);
	assert_string_equal(get(at(f, "n.prom")), "x");
	assert_false(others(f, "m.prom", "n.prom"));
}

/* ST_OUT_PRIVATE (--keylog's secrets): the owner's alone, whatever the old file's mode, the
 * umask or --output-mode. */
static void t_private(void **state)
{
	struct fx *f = *state;
	const char *p = at(f, "keys.log"), *q = at(f, "new.log");
	mode_t old = umask(0);
	struct stat st;

	put(p, "old\n");
	chmod(p, 0644);
	assert_int_equal(st_output_replace(p, "secret\n", 7, ST_OUT_PRIVATE, 0), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_string_equal(get(p), "secret\n");
	assert_int_equal(st_output_replace(q, "s\n", 2, ST_OUT_PRIVATE, 0), 0);
	assert_int_equal(stat(q, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* --output-mode does not open them to others either */
	assert_int_equal(st_output_replace(q, "t\n", 2, ST_OUT_PRIVATE, 0644), 0);
	assert_int_equal(stat(q, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	umask(old);
}

static void t_uncommitted_leaves_target(void **state)
{
	struct fx *f = *state;
	const char *p = at(f, "cap.pcap");
	struct st_output o;
	int fd;

	put(p, "precious");
	fd = st_output_open(&o, p, 0, 0);
	assert_true(fd >= 0);
	assert_false(o.in_place);
	assert_int_equal(write(fd, "new", 3), 3);
	assert_string_equal(get(p), "precious"); /* nothing at the target until commit */
	st_output_abort(&o);
	assert_string_equal(get(p), "precious");
	assert_false(others(f, "cap.pcap", "cap.pcap"));
	/* committed: the fd keeps writing into the file now at the target */
	fd = st_output_open(&o, p, 0, 0);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "ab", 2), 2);
	assert_int_equal(st_output_commit(&o), 0);
	assert_int_equal(write(fd, "cd", 2), 2);
	assert_int_equal(st_output_close(&o), 0);
	assert_string_equal(get(p), "abcd");
	/* a missing target, not committed: nothing created */
	fd = st_output_open(&o, at(f, "none.pcap"), 0, 0);
	assert_true(fd >= 0);
	st_output_abort(&o);
	st_output_abort(&o); /* twice is fine */
	assert_int_not_equal(access(at(f, "none.pcap"), F_OK), 0);
	assert_false(others(f, "cap.pcap", "cap.pcap"));
}

static void t_fifo_in_place(void **state)
{
	struct fx *f = *state;
	const char *p = at(f, "m.fifo");
	struct stat st;
	char buf[16] = "";
	int rd;

	assert_int_equal(mkfifo(p, 0600), 0);
	/* no reader: refused at once, not waited for */
	assert_int_equal(st_output_replace(p, "x", 1, ST_OUT_NONBLOCK, 0), -ENXIO);
	rd = open(p, O_RDONLY | O_NONBLOCK);
	assert_true(rd >= 0);
	assert_int_equal(st_output_replace(p, "metrics\n", 8, ST_OUT_NONBLOCK, 0), 0);
	assert_int_equal(read(rd, buf, sizeof(buf) - 1), 8);
	assert_string_equal(buf, "metrics\n");
	close(rd);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_false(others(f, "m.fifo", "m.fifo"));
}

/* A symlink as the last component is never followed: refused, the file it names untouched,
 * whether it was there at the open or planted before the commit. */
static void t_symlinks_and_dirs(void **state)
{
	struct fx *f = *state;
	struct st_output o;
	struct stat st;
	int fd;

	put(at(f, "target"), "old");
	assert_int_equal(symlink("target", at(f, "link")), 0);
	assert_int_equal(st_output_replace(at(f, "link"), "new", 3, 0, 0), -ELOOP);
	assert_int_equal(st_output_open(&o, at(f, "link"), 0, 0), -ELOOP);
	assert_int_equal(o.fd, -1);
	assert_int_equal(lstat(at(f, "link"), &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_string_equal(get(at(f, "target")), "old");
	assert_non_null(strstr(st_output_strerror(-ELOOP), "symbolic link"));
	/* a link to a device is refused too (it would be written in place) */
	assert_int_equal(symlink("/dev/null", at(f, "null")), 0);
	assert_int_equal(st_output_open(&o, at(f, "null"), ST_OUT_NONBLOCK, 0), -ELOOP);
	assert_int_equal(symlink("nowhere/x", at(f, "dangling")), 0);
	assert_int_equal(st_output_open(&o, at(f, "dangling"), 0, 0), -ELOOP);
	assert_int_equal(lstat(at(f, "nowhere"), &st), -1);
	/* planted between the open and the commit: the commit refuses, nothing is replaced */
	fd = st_output_open(&o, at(f, "late"), 0, 0);
	assert_true(fd >= 0);
	assert_int_equal(symlink("target", at(f, "late")), 0);
	assert_int_equal(st_output_commit(&o), -ELOOP);
	st_output_abort(&o);
	assert_string_equal(get(at(f, "target")), "old");
	assert_int_equal(lstat(at(f, "late"), &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(mkdir(at(f, "d"), 0700), 0);
	assert_int_equal(st_output_open(&o, at(f, "d"), 0, 0), -EISDIR);
	assert_int_equal(st_output_open(&o, at(f, "nodir/x"), 0, 0), -ENOENT);
	assert_int_equal(o.fd, -1);
}

/* New files are 0600 (they hold traffic) unless a mode is given; a replaced file keeps its
 * own, or takes the given one. */
static void t_modes(void **state)
{
	struct fx *f = *state;
	struct stat st;
	mode_t um = umask(0022);

	assert_int_equal(st_output_replace(at(f, "new"), "x", 1, 0, 0), 0);
	assert_int_equal(stat(at(f, "new"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st_output_replace(at(f, "shared"), "x", 1, 0, 0644), 0);
	assert_int_equal(stat(at(f, "shared"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	put(at(f, "old"), "old");
	chmod(at(f, "old"), 0640);
	assert_int_equal(st_output_replace(at(f, "old"), "x", 1, 0, 0), 0);
	assert_int_equal(stat(at(f, "old"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st_output_replace(at(f, "old"), "x", 1, 0, 0600), 0);
	assert_int_equal(stat(at(f, "old"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	umask(um);
}

/* --output-mode's row: octal, the owner reads and writes. */
static void t_mode_option(void **state)
{
	mode_t m = 0;

	(void)state;
	assert_int_equal(st_opt_set(&st_output_opts[0], &m, "0644", "--output-mode"), 0);
	assert_int_equal(m, 0644);
	assert_int_equal(st_opt_set(&st_output_opts[0], &m, "600", "--output-mode"), 0);
	assert_int_equal(m, 0600);
	assert_int_equal(st_opt_set(&st_output_opts[0], &m, "0400", "--output-mode"), -1);
	assert_int_equal(st_opt_set(&st_output_opts[0], &m, "644x", "--output-mode"), -1);
	assert_int_equal(st_opt_set(&st_output_opts[0], &m, "1777", "--output-mode"), -1);
	assert_int_equal(st_opt_set(&st_output_opts[0], &m, "-600", "--output-mode"), -1);
	assert_int_equal(m, 0600);
}

/* Two outputs on one file, however written; devices are written in place and may be shared. */
static void t_same_path(void **state)
{
	struct fx *f = *state;
	char rel[300], err[256];
	const char *paths[3] = { NULL, NULL, NULL };
	const char *opts[3] = { "--report", "--report-json", "--diffs" };

	assert_true(st_output_same(at(f, "r"), at(f, "r")));
	snprintf(rel, sizeof(rel), "%s/./r", f->dir);
	assert_true(st_output_same(at(f, "r"), rel)); /* missing yet: same folder, same name */
	assert_false(st_output_same(at(f, "r"), at(f, "s")));
	assert_false(st_output_same("/dev/null", "/dev/null"));
	assert_true(st_output_same("x.json", "./x.json"));
	paths[0] = at(f, "a");
	paths[2] = rel;
	assert_int_equal(st_output_distinct(paths, opts, 3, err, sizeof(err)), 0);
	paths[1] = at(f, "r");
	assert_int_equal(st_output_distinct(paths, opts, 3, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--report-json and --diffs name one file"));
}

/* -o DIR: created 0700 (or from the mode), never through a symlink. */
static void t_opendir(void **state)
{
	struct fx *f = *state;
	struct stat st;
	int fd;

	fd = st_output_opendir("test", at(f, "out"), false, 0);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(stat(at(f, "out"), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(mkdir(at(f, "real"), 0700), 0);
	assert_int_equal(symlink("real", at(f, "linked")), 0);
	assert_int_equal(st_output_opendir("test", at(f, "linked"), true, 0), -1);
}

static void t_openat_regular_only(void **state)
{
	struct fx *f = *state;
	int dfd = open(f->dir, O_RDONLY | O_DIRECTORY), fd;

	assert_true(dfd >= 0);
	put(at(f, "victim"), "victim");
	assert_int_equal(symlink(at(f, "victim"), at(f, "flow-a")), 0);
	assert_int_equal(st_output_openat(dfd, "flow-a", O_WRONLY | O_CREAT | O_TRUNC, 0644), -1);
	assert_int_equal(errno, ELOOP);
	assert_string_equal(get(at(f, "victim")), "victim");
	assert_int_equal(mkfifo(at(f, "flow-b"), 0600), 0);
	assert_int_equal(st_output_openat(dfd, "flow-b", O_WRONLY | O_CREAT | O_TRUNC, 0644), -1);
	assert_true(errno == ENXIO || errno == EEXIST); /* never blocks on it */
	fd = st_output_openat(dfd, "flow-c", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "ok", 2), 2);
	close(fd);
	assert_string_equal(get(at(f, "flow-c")), "ok");
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(t_regular_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(t_private, setup, teardown),
		cmocka_unit_test_setup_teardown(t_uncommitted_leaves_target, setup, teardown),
		cmocka_unit_test_setup_teardown(t_fifo_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(t_symlinks_and_dirs, setup, teardown),
		cmocka_unit_test_setup_teardown(t_openat_regular_only, setup, teardown),
		cmocka_unit_test_setup_teardown(t_modes, setup, teardown),
		cmocka_unit_test(t_mode_option),
		cmocka_unit_test_setup_teardown(t_same_path, setup, teardown),
		cmocka_unit_test_setup_teardown(t_opendir, setup, teardown),
	};

	return cmocka_run_group_tests_name("output", tests, NULL, NULL);
}
