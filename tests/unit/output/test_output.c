/* SPDX-License-Identifier: GPL-2.0-only */
/* Output paths (agent/output/output.c): what is renamed onto, what is written in place, what stays. */
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
	assert_int_equal(st_output_replace(p, "new\n", 4, ST_OUT_NONBLOCK), 0);
	assert_int_equal(stat(p, &b), 0);
	assert_string_equal(get(p), "new\n");
	assert_int_not_equal(a.st_ino, b.st_ino); /* renamed onto, not rewritten */
	assert_int_equal(b.st_mode & 07777, 0640);
	/* a missing path is created */
	assert_int_equal(st_output_replace(at(f, "n.prom"), "x", 1, 0), 0);
	assert_string_equal(get(at(f, "n.prom")), "x");
	assert_false(others(f, "m.prom", "n.prom"));
}

/* ST_OUT_PRIVATE (--keylog's secrets): the owner's alone, whatever the old file's mode or the
 * umask. */
static void t_private(void **state)
{
	struct fx *f = *state;
	const char *p = at(f, "keys.log"), *q = at(f, "new.log");
	mode_t old = umask(0);
	struct stat st;

	put(p, "old\n");
	chmod(p, 0644);
	assert_int_equal(st_output_replace(p, "secret\n", 7, ST_OUT_PRIVATE), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_string_equal(get(p), "secret\n");
	assert_int_equal(st_output_replace(q, "s\n", 2, ST_OUT_PRIVATE), 0);
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
	fd = st_output_open(&o, p, 0);
	assert_true(fd >= 0);
	assert_false(o.in_place);
	assert_int_equal(write(fd, "new", 3), 3);
	assert_string_equal(get(p), "precious"); /* nothing at the target until commit */
	st_output_abort(&o);
	assert_string_equal(get(p), "precious");
	assert_false(others(f, "cap.pcap", "cap.pcap"));
	/* committed: the fd keeps writing into the file now at the target */
	fd = st_output_open(&o, p, 0);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "ab", 2), 2);
	assert_int_equal(st_output_commit(&o), 0);
	assert_int_equal(write(fd, "cd", 2), 2);
	assert_int_equal(st_output_close(&o), 0);
	assert_string_equal(get(p), "abcd");
	/* a missing target, not committed: nothing created */
	fd = st_output_open(&o, at(f, "none.pcap"), 0);
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
	assert_int_equal(st_output_replace(p, "x", 1, ST_OUT_NONBLOCK), -ENXIO);
	rd = open(p, O_RDONLY | O_NONBLOCK);
	assert_true(rd >= 0);
	assert_int_equal(st_output_replace(p, "metrics\n", 8, ST_OUT_NONBLOCK), 0);
	assert_int_equal(read(rd, buf, sizeof(buf) - 1), 8);
	assert_string_equal(buf, "metrics\n");
	close(rd);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_false(others(f, "m.fifo", "m.fifo"));
}

static void t_symlinks_and_dirs(void **state)
{
	struct fx *f = *state;
	struct st_output o;
	struct stat st;

	put(at(f, "target"), "old");
	assert_int_equal(symlink("target", at(f, "link")), 0);
	assert_int_equal(st_output_replace(at(f, "link"), "new", 3, 0), 0);
	assert_int_equal(lstat(at(f, "link"), &st), 0);
	assert_true(S_ISLNK(st.st_mode)); /* the link stays a link */
	assert_string_equal(get(at(f, "target")), "new");
	assert_int_equal(symlink("nowhere/x", at(f, "dangling")), 0);
	assert_int_equal(st_output_open(&o, at(f, "dangling"), 0), -ENOENT);
	assert_int_equal(mkdir(at(f, "d"), 0700), 0);
	assert_int_equal(st_output_open(&o, at(f, "d"), 0), -EISDIR);
	assert_int_equal(st_output_open(&o, at(f, "nodir/x"), 0), -ENOENT);
	assert_int_equal(o.fd, -1);
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
	};

	return cmocka_run_group_tests_name("output", tests, NULL, NULL);
}
