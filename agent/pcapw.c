/* SPDX-License-Identifier: GPL-2.0-only */
#include "pcapw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "output.h"

struct st_pcapw {
	pcap_t *dead;
	pcap_dumper_t *dumper;
	FILE *f;
	const char *path;     /* as given: reopened by name */
	struct st_output out; /* not used for stdout */
	uint8_t frame[ST_FRAME_MAX];
};

/*
 * Internet checksum (RFC 1071) in the host's byte order, 64 bits at a time:
 * the one's complement sum does not depend on byte order as long as every
 * piece starts at an even offset, so the folded result is stored as is. This
 * is the writer's only per-byte work besides one copy.
 */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t len)
{
	uint64_t w;
	uint16_t t = 0;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		sum += (w & 0xffffffffu) + (w >> 32);
	}
	for (; len >= 2; p += 2, len -= 2) {
		memcpy(&t, p, 2);
		sum += t;
	}
	if (len) {
		t = 0;
		memcpy(&t, p, 1); /* odd tail: padded with a zero byte */
		sum += t;
	}
	return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

size_t st_frame_build(const struct st_segment *seg, uint8_t *buf, size_t cap)
{
	size_t l3 = seg->key.src.family == 6 ? 40 : 20;
	size_t l2 = seg->vlan ? 18 : 14;
	size_t len = l2 + l3 + 20 + seg->len;
	uint8_t *ip, *tcp;
	uint64_t sum;
	uint16_t c;

	if (len > cap || (seg->len && !seg->data))
		return 0;
	memset(buf, 0, l2 + l3 + 20);
	/* Locally administered MACs: 02:..:01 for the client, :02 for the service. */
	buf[0] = 0x02;
	buf[5] = seg->dir == ST_DIR_IN ? 2 : 1;
	buf[6] = 0x02;
	buf[11] = seg->dir == ST_DIR_IN ? 1 : 2;
	if (seg->vlan) {
		put16(buf + 12, 0x8100);
		put16(buf + 14, seg->vlan & 0x0fff);
	}
	put16(buf + l2 - 2, seg->key.src.family == 6 ? 0x86dd : 0x0800);
	ip = buf + l2;
	tcp = ip + l3;
	if (seg->key.src.family == 6) {
		ip[0] = 0x60;
		put16(ip + 4, (uint16_t)(20 + seg->len));
		ip[6] = 6;  /* TCP */
		ip[7] = 64; /* hop limit */
		memcpy(ip + 8, seg->key.src.a, 16);
		memcpy(ip + 24, seg->key.dst.a, 16);
	} else {
		ip[0] = 0x45;
		put16(ip + 2, (uint16_t)(20 + 20 + seg->len));
		put16(ip + 6, 0x4000); /* DF */
		ip[8] = 64;
		ip[9] = 6;
		memcpy(ip + 12, &seg->key.src.a[0], 4);
		memcpy(ip + 16, &seg->key.dst.a[0], 4);
		c = csum_fold(csum_add(0, ip, 20));
		memcpy(ip + 10, &c, 2);
	}
	put16(tcp, seg->key.sport);
	put16(tcp + 2, seg->key.dport);
	put32(tcp + 4, seg->seq);
	put32(tcp + 8, seg->ack);
	tcp[12] = 5 << 4;
	tcp[13] = seg->flags;
	put16(tcp + 14, seg->window);
	if (seg->len)
		memcpy(tcp + 20, seg->data, seg->len);
	/* Pseudo header: addresses, protocol, TCP length. */
	sum = csum_add(0, ip + (l3 == 40 ? 8 : 12), l3 == 40 ? 32 : 8);
	sum += htons(6) + htons((uint16_t)(20 + seg->len));
	sum = csum_add(sum, tcp, 20 + seg->len);
	c = csum_fold(sum);
	memcpy(tcp + 16, &c, 2);
	return len;
}

/* The output file and its pcap header: stdout, or path through the output module. */
static int start(struct st_pcapw *w, const char *path)
{
	int fd, err;

	w->path = path;
	w->out.fd = -1;
	w->out.tmp[0] = 0;
	if (!strcmp(path, "-")) {
		w->f = stdout;
	} else {
		fd = st_output_open(&w->out, path, 0);
		if (fd < 0) {
			pr_err("-w %s: %s", path, strerror(-fd));
			return fd;
		}
		w->f = fdopen(fd, "wb");
		if (!w->f) {
			err = -errno;
			st_output_abort(&w->out);
			pr_err("-w %s: %s", path, strerror(-err));
			return err;
		}
	}
	/* Large writes: a busy service produces tens of MB per second. */
	setvbuf(w->f, NULL, _IOFBF, 1 << 20);
	w->dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 262144,
							PCAP_TSTAMP_PRECISION_NANO);
	if (w->dead)
		w->dumper = pcap_dump_fopen(w->dead, w->f);
	if (!w->dumper) {
		pr_err("-w %s: cannot start pcap output", path);
		if (w->f != stdout) {
			fclose(w->f); /* and its fd: the output's is the same */
			w->out.fd = -1;
			st_output_abort(&w->out);
		}
		if (w->dead)
			pcap_close(w->dead);
		w->dead = NULL;
		return -EIO;
	}
	return 0;
}

/* Flushes and closes the current file; commit: put it at path if not done yet, else a file
 * never committed is removed. */
static int finish(struct st_pcapw *w, bool commit)
{
	int err = st_pcapw__flush(w);

	if (commit && w->f != stdout && !err)
		err = st_output_commit(&w->out);

	/* pcap_dump_close closes the FILE (stdout included) and with it out.fd */
	pcap_dump_close(w->dumper);
	pcap_close(w->dead);
	w->out.fd = -1;
	st_output_abort(&w->out);
	return err;
}

struct st_pcapw *st_pcapw__open(const char *path)
{
	struct st_pcapw *w = calloc(1, sizeof(*w));
	int err;

	if (!w)
		return NULL;
	err = start(w, path);
	if (err) {
		free(w);
		errno = -err;
		return NULL;
	}
	return w;
}

int st_pcapw__commit(struct st_pcapw *w)
{
	int err;

	if (w->f == stdout)
		return 0;
	err = st_output_commit(&w->out);
	if (err)
		pr_err("-w %s: %s", w->path, strerror(-err));
	return err;
}

int st_pcapw__reopen(struct st_pcapw *w)
{
	struct st_pcapw next = { 0 };
	struct stat cur, now;
	int err;

	if (w->f == stdout || w->out.in_place)
		return 0;
	if (fstat(fileno(w->f), &cur))
		return -errno;
	if (!stat(w->path, &now) && now.st_dev == cur.st_dev && now.st_ino == cur.st_ino)
		return 0; /* not moved: a new file would truncate this one's bytes away */
	err = start(&next, w->path);
	if (!err && (err = st_pcapw__commit(&next)))
		finish(&next, false);
	if (err)
		return err;
	if (finish(w, true))
		pr_warn("-w %s: the file moved away may be incomplete (a write failed)", w->path);
	w->dead = next.dead;
	w->dumper = next.dumper;
	w->f = next.f;
	w->out = next.out;
	return 1;
}

int st_pcapw__write(struct st_pcapw *w, const struct st_segment *seg)
{
	struct pcap_pkthdr h;
	size_t len;

	if (seg->kind != ST_SEG_DATA)
		return 0;
	len = st_frame_build(seg, w->frame, sizeof(w->frame));
	if (!len)
		return -EINVAL;
	h.ts.tv_sec = (time_t)(seg->ts_ns / 1000000000ull);
	/* With nanosecond precision libpcap stores tv_usec as nanoseconds. */
	h.ts.tv_usec = (suseconds_t)(seg->ts_ns % 1000000000ull);
	h.caplen = h.len = (bpf_u_int32)len;
	pcap_dump((u_char *)w->dumper, &h, w->frame);
	return 0;
}

int st_pcapw__flush(struct st_pcapw *w)
{
	if (pcap_dump_flush(w->dumper) || ferror(w->f))
		return errno ? -errno : -EIO;
	return 0;
}

int st_pcapw__close(struct st_pcapw *w)
{
	int err;

	if (!w)
		return 0;
	err = finish(w, true);
	free(w);
	return err;
}

void st_pcapw__abort(struct st_pcapw *w)
{
	if (!w)
		return;
	finish(w, false);
	free(w);
}
