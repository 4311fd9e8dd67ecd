/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The flows engine (flowsink.h) driven directly with reassembly events: names and #N,
 * bytes and holes, the LRU of open files, errors.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "flowsink.h"
#include "log.h"

struct env {
	char dir[64];
	int dirfd;
	struct st_flowsink *s;
	struct st_flowsink_config cfg;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/st-flowsink-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	e->dirfd = open(e->dir, O_RDONLY | O_DIRECTORY);
	assert_true(e->dirfd >= 0);
	e->cfg.dirfd = e->dirfd;
	e->cfg.dirname = e->dir;
	st_log_set_level(ST_LOG_ERROR); /* gap lines are warnings */
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char cmd[128];

	st_flowsink__free(e->s);
	close(e->dirfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	if (system(cmd))
		print_error("cleanup failed\n");
	free(e);
	return 0;
}

static struct st_flowsink *sink(struct env *e)
{
	e->s = st_flowsink__new(&e->cfg);
	assert_non_null(e->s);
	return e->s;
}

static struct st_reasm_conn conn(const char *cli, uint16_t cport, const char *srv, uint16_t sport)
{
	struct st_reasm_conn c = { 0 };

	c.key.src.family = c.key.dst.family = strchr(cli, ':') ? 6 : 4;
	assert_int_equal(inet_pton(c.key.src.family == 6 ? AF_INET6 : AF_INET, cli, c.key.src.a), 1);
	assert_int_equal(inet_pton(c.key.dst.family == 6 ? AF_INET6 : AF_INET, srv, c.key.dst.a), 1);
	c.key.sport = cport;
	c.key.dport = sport;
	return c;
}

static void ev_open(struct env *e, struct st_reasm_conn *c)
{
	st_flowsink_ops.open(e->s, c, 1);
}

static void ev_data(struct env *e, struct st_reasm_conn *c, int dir, const char *bytes)
{
	size_t len = strlen(bytes);

	st_flowsink_ops.data(e->s, c, dir, c->bytes[dir] + c->gap_bytes[dir],
			     (const uint8_t *)bytes, (uint32_t)len, 2);
	c->bytes[dir] += len;
}

static void ev_gap(struct env *e, struct st_reasm_conn *c, int dir, uint64_t len)
{
	st_flowsink_ops.gap(e->s, c, dir, c->bytes[dir] + c->gap_bytes[dir], len, ST_GAP_WAIT, 3);
	c->gap_bytes[dir] += len;
}

static void ev_close(struct env *e, struct st_reasm_conn *c)
{
	st_flowsink_ops.close(e->s, c, ST_END_FIN, 4);
}

/* The file's bytes equal want (len bytes); "missing" when want is NULL. */
static void check_file(struct env *e, const char *name, const char *want, size_t len)
{
	char path[256], *got;
	struct stat st;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", e->dir, name);
	if (!want) {
		assert_int_not_equal(stat(path, &st), 0);
		return;
	}
	f = fopen(path, "rb");
	if (!f)
		fail_msg("%s: missing", name);
	got = malloc(len + 1);
	assert_non_null(got);
	assert_int_equal(fread(got, 1, len + 1, f), len);
	assert_memory_equal(got, want, len);
	free(got);
	fclose(f);
}

static size_t count_files(struct env *e)
{
	DIR *d = opendir(e->dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Names per direction, #N for the N-th connection with bytes on a 4-tuple (either way),
 * no file and no number for a connection without bytes, holes for gaps. */
static void t_names_and_holes(void **state)
{
	struct env *e = *state;
	struct st_reasm_conn a = conn("10.0.0.1", 40000, "10.0.0.2", 80);
	struct st_reasm_conn b = a, empty = a, c = a, v6;
	struct st_flowsink_stats st;

	sink(e);
	ev_open(e, &a);
	ev_data(e, &a, ST_DIR_IN, "GET / ");
	ev_data(e, &a, ST_DIR_OUT, "200");
	ev_data(e, &a, ST_DIR_IN, "HTTP/1.1\r\n");
	ev_close(e, &a);
	ev_open(e, &empty); /* no bytes: no file, no number */
	ev_close(e, &empty);
	/* the same 4-tuple seen from the server's side: still the same count */
	b.key.src = a.key.dst;
	b.key.dst = a.key.src;
	b.key.sport = 80;
	b.key.dport = 40000;
	ev_open(e, &b);
	ev_gap(e, &b, ST_DIR_OUT, 3); /* a gap first: numbered too */
	ev_data(e, &b, ST_DIR_OUT, "xyz");
	ev_close(e, &b);
	ev_open(e, &c);
	ev_data(e, &c, ST_DIR_OUT, "third");
	ev_close(e, &c);
	v6 = conn("2001:db8::1", 5000, "2001:db8::2", 443);
	ev_open(e, &v6);
	ev_data(e, &v6, ST_DIR_IN, "six");
	assert_int_equal(st_flowsink__flush(e->s), 0);
	ev_close(e, &v6);
	check_file(e, "10.0.0.1.40000-10.0.0.2.80", "GET / HTTP/1.1\r\n", 16);
	check_file(e, "10.0.0.2.80-10.0.0.1.40000", "200", 3);
	check_file(e, "10.0.0.1.40000-10.0.0.2.80#2", "\0\0\0xyz", 6);
	check_file(e, "10.0.0.2.80-10.0.0.1.40000#3", "third", 5);
	check_file(e, "10.0.0.1.40000-10.0.0.2.80#3", NULL, 0);
	check_file(e, "2001:db8::1.5000-2001:db8::2.443", "six", 3);
	assert_int_equal(count_files(e), 5);
	st_flowsink__stats(e->s, &st);
	assert_int_equal(st.files, 5);
	assert_int_equal(st_flowsink__error(e->s), 0);
}

/* More directions with bytes than open files allowed: the oldest are closed and reopened to
 * append, every byte lands where it belongs. Segments of half a buffer go out at once. */
static void t_open_file_lru(void **state)
{
	struct env *e = *state;
	enum { N = 40, SEG = 2100 };
	struct st_reasm_conn c[N];
	struct st_flowsink_stats st;
	static char seg[3][SEG + 1], want[3 * SEG];
	char name[64];

	for (int r = 0; r < 3; r++) {
		memset(seg[r], 'a' + r, SEG);
		memcpy(want + r * SEG, seg[r], SEG);
	}
	e->cfg.max_open = 4;
	e->cfg.buf_size = 4096;
	sink(e);
	for (int i = 0; i < N; i++) {
		c[i] = conn("10.1.0.1", (uint16_t)(30000 + i), "10.1.0.2", 80);
		ev_open(e, &c[i]);
	}
	for (int r = 0; r < 3; r++)
		for (int i = 0; i < N; i++)
			ev_data(e, &c[i], ST_DIR_IN, seg[r]);
	st_flowsink__stats(e->s, &st);
	assert_int_equal(st.writes, 3 * N); /* not buffered */
	assert_int_equal(st.buffered_peak, 0);
	for (int i = 0; i < N; i++)
		ev_close(e, &c[i]);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "10.1.0.1.%d-10.1.0.2.80", 30000 + i);
		check_file(e, name, want, sizeof(want));
	}
	st_flowsink__stats(e->s, &st);
	assert_int_equal(st.files, N);
	assert_true(st.reopens > 0);
}

/* Small segments are held per direction and written in large writes: when the buffer is
 * full, at close, after idle_ns (tick), before a gap, when buffers would pass max_buffered;
 * the bytes are the same. (Before, every segment was one write(2).) */
static void t_buffers(void **state)
{
	struct env *e = *state;
	struct st_reasm_conn a = conn("10.4.0.1", 1000, "10.4.0.2", 80);
	struct st_reasm_conn b = conn("10.4.0.1", 1001, "10.4.0.2", 80);
	struct st_reasm_conn x[8];
	struct st_flowsink_stats st;
	static char want[8192];
	char path[256], name[64];
	struct stat sb;
	size_t n = 0;

	e->cfg.buf_size = 4096;
	e->cfg.max_buffered = 3 * 4096;
	e->cfg.idle_ns = 100;
	sink(e);
	ev_open(e, &a);
	/* 1000 segments of 7 bytes: 7000 bytes, one write per full buffer */
	for (int i = 0; i < 1000; i++) {
		char seg[8];

		assert_int_equal(snprintf(seg, sizeof(seg), "%06d,", i), 7);
		ev_data(e, &a, ST_DIR_IN, seg);
		memcpy(want + n, seg, 7);
		n += 7;
	}
	st_flowsink__stats(e->s, &st);
	assert_int_equal(st.writes, 1); /* 4095 bytes went out when the 586th did not fit */
	assert_int_equal(st.buffered_peak, 4096);
	/* idle: written at the tick after idle_ns, and the buffer given back */
	st_flowsink__tick(e->s, 2 + 99);
	st_flowsink__stats(e->s, &st);
	assert_int_equal(st.writes, 1);
	st_flowsink__tick(e->s, 2 + 100);
	st_flowsink__stats(e->s, &st);
	assert_int_equal(st.writes, 2);
	snprintf(path, sizeof(path), "%s/10.4.0.1.1000-10.4.0.2.80", e->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 7000);
	/* a gap: what is held goes first, then the hole */
	ev_data(e, &a, ST_DIR_IN, "tail");
	ev_gap(e, &a, ST_DIR_IN, 5);
	memcpy(want + n, "tail\0\0\0\0\0", 9);
	n += 9;
	ev_data(e, &a, ST_DIR_IN, "end");
	memcpy(want + n, "end", 3);
	n += 3;
	/* pressure: more buffers than max_buffered allows; the oldest go first */
	ev_open(e, &b);
	ev_data(e, &b, ST_DIR_OUT, "b-out");
	for (int i = 0; i < 8; i++) {
		x[i] = conn("10.4.1.1", (uint16_t)(2000 + i), "10.4.0.2", 80);
		ev_open(e, &x[i]);
		ev_data(e, &x[i], ST_DIR_IN, "x");
	}
	st_flowsink__stats(e->s, &st);
	assert_int_equal(st.buffered_peak, 3 * 4096);
	check_file(e, "10.4.0.1.1000-10.4.0.2.80", want, n);  /* released under pressure */
	check_file(e, "10.4.0.2.80-10.4.0.1.1001", "b-out", 5);
	for (int i = 0; i < 8; i++)
		ev_close(e, &x[i]);
	ev_close(e, &a);
	ev_close(e, &b);
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "10.4.1.1.%d-10.4.0.2.80", 2000 + i);
		check_file(e, name, "x", 1);
	}
	assert_int_equal(st_flowsink__flush(e->s), 0);
}

/* The #N counts live in a bounded map: a 4-tuple that comes back after it was forgotten is
 * numbered from the folder, so names stay right (the old table kept every 4-tuple ever seen;
 * an LRU that forgot without looking would restart at 1 and truncate the first file). */
static void t_numbering_bounded(void **state)
{
	struct env *e = *state;
	enum { T = 50, ROUNDS = 3 };
	struct st_reasm_conn c;
	struct st_flowsink_stats st;
	char name[64], want[16];

	e->cfg.max_tuples = 4;
	sink(e);
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < T; i++) {
			c = conn("10.3.0.1", (uint16_t)(20000 + i), "10.3.0.2", 80);
			ev_open(e, &c);
			/* one direction only, alternating: the folder is read both ways */
			snprintf(want, sizeof(want), "r%d", r);
			ev_data(e, &c, (r + i) % 2 ? ST_DIR_OUT : ST_DIR_IN, want);
			ev_close(e, &c);
		}
	}
	assert_int_equal(st_flowsink__flush(e->s), 0);
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < T; i++) {
			char nth[8] = "";

			if (r)
				assert_true(snprintf(nth, sizeof(nth), "#%d", r + 1) < (int)sizeof(nth));
			if ((r + i) % 2)
				snprintf(name, sizeof(name), "10.3.0.2.80-10.3.0.1.%d%s", 20000 + i, nth);
			else
				snprintf(name, sizeof(name), "10.3.0.1.%d-10.3.0.2.80%s", 20000 + i, nth);
			snprintf(want, sizeof(want), "r%d", r);
			check_file(e, name, want, 2);
		}
	}
	assert_int_equal(count_files(e), T * ROUNDS);
	st_flowsink__stats(e->s, &st);
	assert_true(st.tuples_forgotten >= T * ROUNDS - 4);
}

/* A FIFO under a flow's name: refused (never opened blocking, never followed), the error kept
 * and later events ignored. */
static void t_error_kept(void **state)
{
	struct env *e = *state;
	struct st_reasm_conn a = conn("10.2.0.1", 1234, "10.2.0.2", 80);
	struct st_reasm_conn b = conn("10.2.0.1", 1235, "10.2.0.2", 80);
	char path[256];

	snprintf(path, sizeof(path), "%s/10.2.0.1.1234-10.2.0.2.80", e->dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	sink(e);
	ev_open(e, &a);
	ev_open(e, &b);
	ev_data(e, &a, ST_DIR_IN, "x");
	ev_close(e, &a);
	ev_data(e, &b, ST_DIR_IN, "y");
	ev_close(e, &b);
	assert_true(st_flowsink__flush(e->s) < 0);
	assert_true(st_flowsink__error(e->s) < 0);
	check_file(e, "10.2.0.1.1235-10.2.0.2.80", NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(t_names_and_holes, setup, teardown),
		cmocka_unit_test_setup_teardown(t_open_file_lru, setup, teardown),
		cmocka_unit_test_setup_teardown(t_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(t_numbering_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(t_error_kept, setup, teardown),
	};

	return cmocka_run_group_tests_name("flowsink", tests, NULL, NULL);
}
