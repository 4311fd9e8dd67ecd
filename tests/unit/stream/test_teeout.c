/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The tee's output (teeout.c): frames written whole and in order to a pipe and to a file (a
 * discarded file leaves nothing); a reader that takes nothing never makes a push wait, the
 * queue's bytes and peak say so, and the end gives the writer up after wait_ms with every
 * byte accounted for (pushed = written + discarded + queued); a reader that went away is the
 * output's error; a plaintext link to a fake receiver (it says K, then reads) that it cuts:
 * the writer reconnects, the frames of the cut stream are thrown away and counted, the new
 * generation's go to the new connection, downs counts the loss. (TLS: tlslink.c, and the
 * real commands in tests/integration/test_tee.sh, test_receive_listen.sh.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "stream.h"
#include "teeout.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct st_teeout *open_fd(int fd)
{
	const struct st_teeout_config c = { .fd = fd, .what = "test" };
	char err[256] = "";
	struct st_teeout *q = st_teeout__open(&c, err, sizeof(err));

	if (!q)
		fail_msg("st_teeout__open: %s", err);
	if (st_teeout__start(q, err, sizeof(err)))
		fail_msg("st_teeout__start: %s", err);
	return q;
}

/* Frame i: its number and a length of its own, so order and wholeness show. */
static size_t frame(unsigned i, uint8_t *buf, size_t cap)
{
	size_t n = 1 + (i * 37) % 200;

	assert_true(n <= cap);
	for (size_t k = 0; k < n; k++)
		buf[k] = (uint8_t)(i + k);
	return n;
}

static void read_all(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		assert_true(r > 0);
		got += (size_t)r;
	}
}

/* Frames go whole and in the order pushed; the end writes everything out. */
static void test_pipe_in_order(void **state)
{
	static uint8_t want[64 << 10], got[64 << 10];
	struct st_teeout_state s;
	size_t total = 0;
	int p[2];
	struct st_teeout *q;

	assert_int_equal(pipe(p), 0);
	q = open_fd(p[1]);
	for (unsigned i = 0; i < 100; i++) {
		size_t n = frame(i, want + total, sizeof(want) - total);

		assert_int_equal(st_teeout__push(q, 0, want + total, n), 0);
		total += n;
	}
	assert_true(total < 60000); /* within the pipe's buffer: nobody needs to read first */
	assert_int_equal(st_teeout__close(q, false, 1000, &s), 0);
	assert_false(s.given_up);
	assert_int_equal(s.written, total);
	assert_int_equal(s.queued, 0);
	assert_int_equal(s.discarded, 0);
	assert_true(s.peak > 0 && s.peak <= total);
	read_all(p[0], got, total);
	assert_memory_equal(got, want, total);
	close(p[0]);
	close(p[1]);
}

/* A reader that takes nothing: pushes never wait, the queue holds what the pipe does not,
 * its peak says how much; the end gives the writer up after wait_ms (-EPIPE) and every byte
 * is accounted for. */
static void test_stalled_reader(void **state)
{
	static uint8_t buf[64 << 10];
	struct st_teeout_state s;
	uint64_t t0, pushed = 0;
	struct st_teeout *q;
	int p[2];

	assert_int_equal(pipe(p), 0);
	q = open_fd(p[1]);
	t0 = now_ms();
	for (unsigned i = 0; i < 64; i++) {
		assert_int_equal(st_teeout__push(q, 0, buf, sizeof(buf)), 0);
		pushed += sizeof(buf);
	}
	assert_true(now_ms() - t0 < 1000); /* 4 MiB queued, none of it taken: no wait */
	st_teeout__state(q, &s);
	assert_true(s.queued >= pushed - (1u << 20)); /* the pipe took at most its buffer */
	assert_true(st_teeout__queued(q) <= s.queued); /* the writer only takes */
	assert_int_equal(s.written + s.discarded + s.queued, pushed);
	assert_true(s.peak >= s.queued);
	t0 = now_ms();
	assert_int_equal(st_teeout__close(q, false, 200, &s), -EPIPE);
	assert_true(now_ms() - t0 < 2000);
	assert_true(s.given_up);
	assert_int_equal(s.written + s.discarded + s.queued, pushed);
	assert_true(s.discarded > 0);
	/* the writer, detached, ends once its write fails: it frees the output (p[1] stays
	 * open: its number must not be another test's while the writer may still hold it) */
	close(p[0]);
	usleep(200 * 1000);
}

/* A reader that went away: the output's error, said by the next push and by the state. */
static void test_reader_gone(void **state)
{
	uint8_t b[100] = { 0 };
	struct st_teeout_state s = { 0 };
	struct st_teeout *q;
	uint64_t t0;
	int p[2];

	assert_int_equal(pipe(p), 0);
	close(p[0]);
	q = open_fd(p[1]);
	assert_int_equal(st_teeout__push(q, 0, b, sizeof(b)), 0);
	for (t0 = now_ms(); now_ms() - t0 < 2000;) {
		st_teeout__state(q, &s);
		if (s.err)
			break;
		usleep(1000);
	}
	assert_int_equal(s.err, -EPIPE);
	assert_int_equal(st_teeout__push(q, 0, b, sizeof(b)), -EPIPE);
	assert_int_equal(st_teeout__close(q, false, 200, &s), -EPIPE);
	assert_false(s.given_up);
	assert_int_equal(s.written, 0);
	assert_int_equal(s.discarded, sizeof(b));
	close(p[1]);
}

/* -o FILE: written through a temporary file, in place once committed; a discarded output
 * leaves nothing behind. */
static void test_file(void **state)
{
	char dir[] = "/tmp/st-teeout.XXXXXX", path[64], err[256] = "", got[16] = "";
	struct st_teeout_config c = { .what = "test" };
	struct st_teeout *q;
	struct stat stt;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/out.tee", dir);
	c.path = path;
	q = st_teeout__open(&c, err, sizeof(err));
	assert_non_null(q);
	assert_int_equal(st_teeout__start(q, err, sizeof(err)), 0);
	assert_int_equal(st_teeout__push(q, 0, (const uint8_t *)"abc", 3), 0);
	assert_int_equal(st_teeout__push(q, 0, (const uint8_t *)"defg", 4), 0);
	assert_int_equal(st_teeout__close(q, false, 1000, NULL), 0);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, got, sizeof(got)), 7);
	assert_string_equal(got, "abcdefg");
	assert_int_equal(fstat(fd, &stt), 0);
	assert_int_equal(stt.st_mode & 0777, 0600);
	close(fd);
	unlink(path);

	q = st_teeout__open(&c, err, sizeof(err));
	assert_non_null(q);
	assert_int_equal(st_teeout__start(q, err, sizeof(err)), 0);
	assert_int_equal(st_teeout__push(q, 0, (const uint8_t *)"abc", 3), 0);
	assert_int_equal(st_teeout__close(q, true, 1000, NULL), 0);
	assert_int_equal(stat(path, &stt), -1);
	assert_int_equal(rmdir(dir), 0); /* nothing left: no temporary file either */

	snprintf(path, sizeof(path), "%s/none/out.tee", dir);
	assert_null(st_teeout__open(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "-o /tmp/st-teeout."));
}

/* ---- a fake receiver: says K, then reads each connection until it ends ---------------- */

struct rx {
	int lfd;
	unsigned port;
	pthread_t th;
	pthread_mutex_t mu;
	int conns;           /* connections taken */
	int cur;             /* the current connection's fd, -1 */
	uint8_t got[4][4096];
	size_t n[4];
	bool stop;
};

static void *rx_run(void *arg)
{
	struct rx *r = arg;

	for (;;) {
		int fd = accept(r->lfd, NULL, NULL), i;
		uint8_t b[512];
		ssize_t n;

		if (fd < 0)
			return NULL;
		pthread_mutex_lock(&r->mu);
		i = r->conns++;
		r->cur = fd;
		pthread_mutex_unlock(&r->mu);
		if (write(fd, "K", 1) != 1) { /* no cmocka asserts off the test's thread */
			close(fd);
			continue;
		}
		while ((n = read(fd, b, sizeof(b))) > 0) {
			pthread_mutex_lock(&r->mu);
			if (i < 4 && r->n[i] + (size_t)n <= sizeof(r->got[i])) {
				memcpy(r->got[i] + r->n[i], b, (size_t)n);
				r->n[i] += (size_t)n;
			}
			pthread_mutex_unlock(&r->mu);
		}
		pthread_mutex_lock(&r->mu);
		r->cur = -1;
		pthread_mutex_unlock(&r->mu);
		close(fd);
	}
}

static void rx_start(struct rx *r)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	memset(r, 0, sizeof(*r));
	r->cur = -1;
	pthread_mutex_init(&r->mu, NULL);
	r->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(r->lfd >= 0);
	assert_int_equal(bind(r->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(r->lfd, 4), 0);
	assert_int_equal(getsockname(r->lfd, (struct sockaddr *)&a, &al), 0);
	r->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&r->th, NULL, rx_run, r), 0);
}

/* Bytes the receiver got on its connection i. */
static size_t rx_got(struct rx *r, int i)
{
	size_t n;

	pthread_mutex_lock(&r->mu);
	n = r->n[i];
	pthread_mutex_unlock(&r->mu);
	return n;
}

static void wait_got(struct rx *r, int i, size_t n)
{
	for (uint64_t t0 = now_ms(); rx_got(r, i) < n; usleep(1000))
		if (now_ms() - t0 > 5000)
			fail_msg("connection %d: %zu bytes, %zu expected", i, rx_got(r, i), n);
}

/* The link is cut (the receiver went away) and comes back: the writer reconnects with its
 * backoff, says down then reconnected (once) with a new generation; frames of the old one
 * are thrown away (counted), the new generation's reach the new connection alone. */
static void test_link_lost_and_back(void **state)
{
	struct st_teeout_config c = { .what = "test" };
	struct st_teeout_state s;
	char to[32], err[256] = "";
	uint64_t pushed = 0, t0;
	bool saw_down = false;
	struct st_teeout *q;
	struct rx r;
	int fd;

	rx_start(&r);
	snprintf(to, sizeof(to), "127.0.0.1:%u", r.port);
	c.to = to;
	q = st_teeout__open(&c, err, sizeof(err));
	assert_non_null(q);
	if (st_teeout__start(q, err, sizeof(err)))
		fail_msg("start: %s", err);
	assert_int_equal(st_teeout__push(q, 0, (const uint8_t *)"first;", 6), 0);
	assert_int_equal(st_teeout__push(q, 0, (const uint8_t *)"second;", 7), 0);
	pushed += 13;
	wait_got(&r, 0, 13);
	assert_memory_equal(r.got[0], "first;second;", 13);

	/* the receiver goes away: its end is reset */
	pthread_mutex_lock(&r.mu);
	fd = r.cur;
	pthread_mutex_unlock(&r.mu);
	{
		struct linger l = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		shutdown(fd, SHUT_RDWR);
	}
	/* the stream goes on in generation 0 until the writer's write fails */
	for (t0 = now_ms();; usleep(5000)) {
		st_teeout__poll(q, &s);
		saw_down |= s.down;
		if (s.reconnected)
			break;
		if (now_ms() - t0 > 5000)
			fail_msg("no reconnect: down %d, why %s", s.down, s.why);
		if (!saw_down) {
			assert_int_equal(st_teeout__push(q, 0, (const uint8_t *)"cut;", 4), 0);
			pushed += 4;
		}
	}
	assert_true(saw_down);
	assert_int_equal(s.gen, 1);
	assert_int_equal(s.downs, 1);
	assert_false(s.down);
	st_teeout__poll(q, &s);
	assert_false(s.reconnected); /* said once */

	/* stale frames (generation 0) are thrown away; generation 1's go */
	assert_int_equal(st_teeout__push(q, 0, (const uint8_t *)"stale;", 6), 0);
	assert_int_equal(st_teeout__push(q, 1, (const uint8_t *)"new;", 4), 0);
	pushed += 10;
	wait_got(&r, 1, 4);
	assert_int_equal(st_teeout__close(q, false, 1000, &s), 0);
	assert_int_equal(rx_got(&r, 1), 4);
	assert_memory_equal(r.got[1], "new;", 4);
	assert_int_equal(s.queued, 0);
	assert_int_equal(s.written + s.discarded, pushed);
	assert_true(s.discarded >= 6);
	assert_int_equal(s.downs, 1);
	assert_int_equal(r.conns, 2);

	shutdown(r.lfd, SHUT_RDWR);
	close(r.lfd);
	pthread_join(r.th, NULL);
	pthread_mutex_destroy(&r.mu);
}

/* A receiver that is not there: start says so, with the address. */
static void test_link_refused(void **state)
{
	struct st_teeout_config c = { .what = "test", .to = "127.0.0.1:1" };
	char err[256] = "";
	struct st_teeout *q = st_teeout__open(&c, err, sizeof(err));

	assert_non_null(q);
	assert_int_equal(st_teeout__start(q, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--to 127.0.0.1:1: "));
	assert_int_equal(st_teeout__close(q, true, 100, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipe_in_order),
		cmocka_unit_test(test_stalled_reader),
		cmocka_unit_test(test_reader_gone),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_link_lost_and_back),
		cmocka_unit_test(test_link_refused),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
