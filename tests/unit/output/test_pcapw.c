/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The pcap writer (pcapw.h): its thread and bounded queue. A file gets every packet, whole and
 * in order; a stalled pipe never blocks the caller (packets are dropped and counted) and
 * never blocks close for more than the stall timeout; logrotate's reopen splits the packets
 * between two valid files; a reader that goes away is an EPIPE.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <pcap/pcap.h>
#include <cmocka.h>

#include "loop.h"
#include "pcapw.h"

static uint8_t payload[ST_CHUNK_MAX];

static struct st_segment seg(uint32_t i, uint32_t len)
{
	struct st_segment s = { 0 };

	s.key.src.family = s.key.dst.family = 4;
	s.key.src.a[0] = 0x0100000a;
	s.key.dst.a[0] = 0x0200000a;
	s.key.sport = 40000;
	s.key.dport = 80;
	s.ts_ns = 1700000000000000000ull + i * 1000ull;
	s.seq = i;
	s.flags = ST_TCP_ACK;
	s.len = len;
	s.data = payload;
	return s;
}

/* Packets in a pcap file (libpcap reads it), checking each one's seq against its index. */
static int read_back(const char *path, uint32_t first_seq)
{
	char err[PCAP_ERRBUF_SIZE];
	pcap_t *rd = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
	struct pcap_pkthdr *h;
	const u_char *pkt;
	int n = 0;

	assert_non_null(rd);
	while (pcap_next_ex(rd, &h, &pkt) == 1) {
		uint32_t seq = (uint32_t)pkt[38] << 24 | (uint32_t)pkt[39] << 16 |
			       (uint32_t)pkt[40] << 8 | pkt[41];

		assert_int_equal(seq, first_seq + (uint32_t)n);
		assert_int_equal(h->caplen, 54 + seq % 1500);
		n++;
	}
	pcap_close(rd);
	return n;
}

static char *tmp_path(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "/tmp/st-test-pcapw-%d-%s", (int)getpid(), what);
	unlink(buf);
	return buf;
}

/* A regular file gets every packet, whole and in order, written by the thread. */
static void t_file(void **state)
{
	char path[128];
	struct st_pcapw *w;
	struct st_pcapw_stats st;
	uint64_t bytes = 0;

	tmp_path(path, sizeof(path), "file");
	w = st_pcapw__open(path, 0, 0);
	assert_non_null(w);
	assert_int_equal(st_pcapw__commit(w), 0);
	for (uint32_t i = 0; i < 20000; i++) {
		struct st_segment s = seg(i, i % 1500);

		assert_int_equal(st_pcapw__write(w, &s), 0);
		bytes += i % 1500;
		if (i % 1000 == 0)
			assert_int_equal(st_pcapw__flush(w), 0);
	}
	assert_int_equal(st_pcapw__close(w, &st), 0);
	assert_int_equal(st.packets, 20000);
	assert_int_equal(st.bytes, bytes);
	assert_int_equal(st.dropped_writes, 0);
	assert_true(st.write_queue_peak > 0 && st.write_queue_peak <= ST_PCAPW_QUEUE_DEFAULT);
	assert_int_equal(read_back(path, 0), 20000);
	unlink(path);
	(void)state;
}

static double now_s(void)
{
	return (double)st_loop_mono_ns() / 1e9;
}

/* A FIFO whose reader takes nothing: writes never wait (the queue fills, then packets are
 * dropped and counted), and close gives up after the stall timeout. What reached the pipe
 * is whole records, as many as the summary says were written. */
static void t_stalled_fifo(void **state)
{
	char path[128];
	struct st_pcapw *w;
	struct st_pcapw_stats st;
	static uint8_t got[1 << 20];
	size_t n = 0, off, recs = 0;
	double t0;
	ssize_t r;
	int rfd;

	tmp_path(path, sizeof(path), "fifo");
	assert_int_equal(mkfifo(path, 0600), 0);
	rfd = open(path, O_RDONLY | O_NONBLOCK); /* a reader that never reads (until the end) */
	assert_true(rfd >= 0);
	w = st_pcapw__open(path, 1 << 20, 0);
	assert_non_null(w);
	assert_true(st_pcapw__streaming(w));
	t0 = now_s();
	for (uint32_t i = 0; i < 20000; i++) {
		struct st_segment s = seg(i, 1000 + i % 500);

		assert_int_equal(st_pcapw__write(w, &s), 0);
		if (i % 100 == 0)
			assert_int_equal(st_pcapw__flush(w), 0);
	}
	assert_true(now_s() - t0 < 2.0); /* 30 MB into a pipe nobody reads, without waiting */
	t0 = now_s();
	assert_int_equal(st_pcapw__close(w, &st), 0);
	assert_true(now_s() - t0 < (double)ST_PCAPW_STALL_NS / 1e9 + 2.0);
	assert_int_equal(st.packets + st.dropped_writes, 20000);
	assert_true(st.dropped_writes > 15000);
	assert_true(st.write_queue_peak <= 1 << 20);
	/* the pipe holds the header and st.packets whole records (the last may be cut) */
	while ((r = read(rfd, got + n, sizeof(got) - n)) > 0)
		n += (size_t)r;
	close(rfd);
	assert_true(n >= 24);
	for (off = 24; off + 16 <= n; recs++) {
		uint32_t caplen;

		memcpy(&caplen, got + off + 8, 4);
		if (off + 16 + caplen > n)
			break;
		off += 16 + caplen;
	}
	assert_int_equal(recs, st.packets);
	unlink(path);
	(void)state;
}

/* logrotate: the file moved away gets what was written before the reopen; a new file at the
 * path gets the rest; both are valid pcaps. Not moved: nothing to do. */
static void t_reopen(void **state)
{
	char path[128], moved[160];
	struct st_pcapw *w;
	struct st_pcapw_stats st;
	uint32_t i;

	tmp_path(path, sizeof(path), "rot");
	snprintf(moved, sizeof(moved), "%s.1", path);
	w = st_pcapw__open(path, 0, 0);
	assert_non_null(w);
	assert_int_equal(st_pcapw__commit(w), 0);
	for (i = 0; i < 3000; i++) {
		struct st_segment s = seg(i, i % 1500);

		assert_int_equal(st_pcapw__write(w, &s), 0);
	}
	assert_int_equal(st_pcapw__reopen(w), 0); /* still there */
	assert_int_equal(rename(path, moved), 0);
	assert_int_equal(st_pcapw__reopen(w), 1);
	for (; i < 5000; i++) {
		struct st_segment s = seg(i, i % 1500);

		assert_int_equal(st_pcapw__write(w, &s), 0);
	}
	assert_int_equal(st_pcapw__close(w, &st), 0);
	assert_int_equal(st.packets, 5000);
	assert_int_equal(read_back(moved, 0), 3000);
	assert_int_equal(read_back(path, 3000), 2000);
	unlink(path);
	unlink(moved);
	(void)state;
}

/* The reader goes away: the output's error is EPIPE (a normal end for `-w - | head`). */
static void t_reader_gone(void **state)
{
	char path[128];
	struct st_pcapw *w;
	int rfd, err = 0;

	signal(SIGPIPE, SIG_IGN);
	tmp_path(path, sizeof(path), "gone");
	assert_int_equal(mkfifo(path, 0600), 0);
	rfd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(rfd >= 0);
	w = st_pcapw__open(path, 0, 0);
	assert_non_null(w);
	close(rfd);
	for (uint32_t i = 0; i < 100000 && !err; i++) {
		struct st_segment s = seg(i, 1000);

		assert_int_equal(st_pcapw__write(w, &s), 0);
		err = st_pcapw__flush(w);
		if (!err && i % 1000 == 999)
			usleep(1000);
	}
	assert_int_equal(err, -EPIPE);
	assert_int_equal(st_pcapw__close(w, NULL), -EPIPE);
	unlink(path);
	(void)state;
}

static char cmd_buf[512];

/* The job's names: w-N.pcap, N digits only. */
static bool name_ok(const char *path)
{
	const char *b = strrchr(path, '/');

	b = b ? b + 1 : path;
	return !strncmp(b, "w-", 2) && strspn(b + 2, "0123456789") == strlen(b + 2) - 5 &&
	       !strcmp(b + strlen(b) - 5, ".pcap");
}

static void put_file(const char *path, const void *b, size_t n)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
}

/* --keep counts and removes an earlier run's files only when this job could have written
 * them: a regular file of ours with a pcap or pcapng header and a name the job accepts; a
 * symlink, a file of another content, owner or name stays (and what a link names too). */
static void t_rotation_keep_ours(void **state)
{
	static const uint8_t pcap[24] = { 0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0 };
	static const uint8_t pcapng[12] = { 0x0a, 0x0d, 0x0d, 0x0a };
	char dir[128], p[6][192], glob_pat[192], victim[192], cur[192], next[192];
	struct st_pcapw *w;
	struct stat st;

	tmp_path(dir, sizeof(dir), "keep");
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(victim, sizeof(victim), "%s.victim", dir);
	put_file(victim, pcap, sizeof(pcap));
	snprintf(p[0], sizeof(p[0]), "%s/w-1.pcap", dir); /* ours: pcap */
	put_file(p[0], pcap, sizeof(pcap));
	snprintf(p[1], sizeof(p[1]), "%s/w-2.pcap", dir); /* ours: pcapng */
	put_file(p[1], pcapng, sizeof(pcapng));
	snprintf(p[2], sizeof(p[2]), "%s/w-3.pcap", dir); /* not a capture */
	put_file(p[2], "precious notes\n", 15);
	snprintf(p[3], sizeof(p[3]), "%s/w-4.pcap", dir); /* a link to a capture elsewhere */
	assert_int_equal(symlink(victim, p[3]), 0);
	snprintf(p[4], sizeof(p[4]), "%s/w-5.pcap", dir); /* another user's */
	put_file(p[4], pcap, sizeof(pcap));
	if (chown(p[4], 65534, 65534))
		skip();
	snprintf(p[5], sizeof(p[5]), "%s/w-6x.pcap", dir); /* a name the job refuses */
	put_file(p[5], pcap, sizeof(pcap));
	snprintf(glob_pat, sizeof(glob_pat), "%s/w-*.pcap", dir);
	snprintf(cur, sizeof(cur), "%s/w-7.pcap", dir);
	w = st_pcapw__open(cur, 0, 0);
	assert_non_null(w);
	assert_int_equal(st_pcapw__rotation(w, 2, glob_pat, name_ok), 0);
	/* three more files: the two older ones of ours go, then the first of this run */
	for (int i = 8; i <= 10; i++) {
		struct st_segment sg = seg((uint32_t)i, 10);

		assert_int_equal(st_pcapw__write(w, &sg), 0);
		snprintf(next, sizeof(next), "%s/w-%d.pcap", dir, i);
		assert_int_equal(st_pcapw__rotate(w, next), 0);
	}
	assert_int_equal(st_pcapw__close(w, NULL), 0);
	assert_int_not_equal(lstat(p[0], &st), 0);
	assert_int_not_equal(lstat(p[1], &st), 0);
	for (int i = 2; i < 6; i++)
		if (lstat(p[i], &st))
			fail_msg("%s was removed: it is not this job's", p[i]);
	assert_true(S_ISLNK((lstat(p[3], &st), st.st_mode)));
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_size, sizeof(pcap));
	snprintf(cmd_buf, sizeof(cmd_buf), "rm -rf '%s' '%s'", dir, victim);
	assert_int_equal(system(cmd_buf), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_file),
		cmocka_unit_test(t_rotation_keep_ours),
		cmocka_unit_test(t_stalled_fifo),
		cmocka_unit_test(t_reopen),
		cmocka_unit_test(t_reader_gone),
	};

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	return cmocka_run_group_tests_name("pcapw", tests, NULL, NULL);
}
