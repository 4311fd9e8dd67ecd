/* SPDX-License-Identifier: GPL-2.0-only */
/* pcap / pcapng input (see pcapin.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pcap/pcap.h>

#include "pcapin.h"
#include "pktparse.h"

/* A snap-length cut gives up to three segments from one packet: data, loss, FIN/RST. */
#define PENDING_MAX 2
/* libpcap's largest capture length for the link types decoded here (MAXIMUM_SNAPLEN). */
#define MAX_CAPLEN 262144u
/* The read buffer of a classic pcap file: 1 MiB reads, and the largest record fits. */
#define RBUF_SIZE (1u << 20)
_Static_assert(RBUF_SIZE >= 16 + MAX_CAPLEN, "a record fits in the read buffer");

/*
 * A classic pcap in a regular file, read in 1 MiB pread()s into one buffer and its records
 * parsed in place, instead of libpcap's stdio: one copy of the bytes (the kernel's), where
 * libpcap copies each record again out of its FILE buffer, or reads a large one with calls
 * of its own.
 */
struct rbuf {
	int fd;          /* -1: libpcap reads */
	uint8_t *buf;
	size_t cap;      /* RBUF_SIZE; less for a smaller file, grown when a record needs it */
	size_t start, end; /* unread bytes: buf[start, end) */
	uint64_t off;    /* file offset of buf[end] */
	bool eof;
	uint32_t snaplen;
	bool swapped;    /* the writer's byte order is not ours */
	bool nsec;       /* nanosecond timestamps */
	int8_t lengths_swapped; /* files of version 2.3 and before: 1 swapped, -1 maybe */
};

struct st_pcapin {
	pcap_t *pc;      /* NULL when read through rb */
	struct rbuf rb;
	int dlt;
	bool truncated;
	char err[PCAP_ERRBUF_SIZE + 64];
	struct st_segment pending[PENDING_MAX];
	unsigned n_pending, next_pending;
	struct st_pcapin_stats st;
};

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* From the link layer's type field on, with the kernel programs' parser. */
static int decode_at(const uint8_t *p, uint32_t caplen, uint16_t proto, uint32_t off,
		     struct st_segment *seg, uint32_t *cut)
{
	struct st_pktbuf b = { .p = p, .avail = caplen };
	struct st_pkt k;

	switch (st_parse_at(&b, caplen, htons(proto), off, &k)) {
	case ST_PARSE_TCP:
		break;
	case ST_PARSE_FRAG:
		return ST_DEC_FRAGMENT;
	case ST_PARSE_BAD:
		return ST_DEC_MALFORMED;
	default:
		return ST_DEC_OTHER;
	}
	seg->key.src.family = seg->key.dst.family = k.family;
	memcpy(seg->key.src.a, k.saddr, sizeof(seg->key.src.a));
	memcpy(seg->key.dst.a, k.daddr, sizeof(seg->key.dst.a));
	seg->key.sport = k.sport;
	seg->key.dport = k.dport;
	seg->seq = k.seq;
	seg->ack = k.ack;
	seg->flags = k.tcp_flags & (ST_TCP_FIN | ST_TCP_SYN | ST_TCP_RST | ST_TCP_PSH | ST_TCP_ACK |
				    ST_TCP_URG);
	seg->window = k.window;
	seg->vlan = k.vlan;
	seg->kind = ST_SEG_DATA;
	seg->data = p + k.payload_off;
	/* payload_len stops at the end of what the file holds; the IP length says
	 * how much more the wire carried (a snap-length cut). */
	seg->len = k.payload_len;
	*cut = k.ip_end > caplen ? k.ip_end - caplen : 0;
	return ST_DEC_TCP;
}

int st_pcapin_decode(int dlt, const uint8_t *p, uint32_t caplen, struct st_segment *seg,
		     uint32_t *cut)
{
	uint32_t af;

	*cut = 0;
	seg->key = (struct st_flow_key){ 0 };
	seg->vlan = 0;
	switch (dlt) {
	case DLT_EN10MB:
		if (caplen < 14)
			return ST_DEC_MALFORMED;
		return decode_at(p, caplen, rd16(p + 12), 14, seg, cut);
	case DLT_LINUX_SLL:
		if (caplen < 16)
			return ST_DEC_MALFORMED;
		return decode_at(p, caplen, rd16(p + 14), 16, seg, cut);
	case DLT_LINUX_SLL2:
		if (caplen < 20)
			return ST_DEC_MALFORMED;
		return decode_at(p, caplen, rd16(p), 20, seg, cut);
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
		return decode_at(p, caplen, 0, 0, seg, cut);
	case DLT_NULL:
	case DLT_LOOP:
		if (caplen < 4)
			return ST_DEC_MALFORMED;
		/* NULL: the writer's byte order; LOOP: network order. AF values differ per OS */
		af = rd32(p);
		if (dlt == DLT_NULL && (af & 0xffff0000u))
			af = __builtin_bswap32(af);
		switch (af) {
		case 2:                       /* AF_INET everywhere */
		case 10: case 24: case 28: case 30: /* AF_INET6: Linux, *BSD, FreeBSD, Darwin */
			return decode_at(p, caplen, 0, 4, seg, cut);
		default:
			return ST_DEC_OTHER;
		}
	default:
		return ST_DEC_OTHER;
	}
}

bool st_pcapin_linktype_known(int dlt)
{
	switch (dlt) {
	case DLT_EN10MB:
	case DLT_LINUX_SLL:
	case DLT_LINUX_SLL2:
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
	case DLT_NULL:
	case DLT_LOOP:
		return true;
	default:
		return false;
	}
}

static struct st_pcapin *finish_open(pcap_t *pc, const char *ebuf, char *err, size_t errlen)
{
	struct st_pcapin *p;
	const char *name, *desc;
	int dlt;

	if (!pc) {
		snprintf(err, errlen, "%s", ebuf);
		errno = EINVAL;
		return NULL;
	}
	dlt = pcap_datalink(pc);
	if (!st_pcapin_linktype_known(dlt)) {
		name = pcap_datalink_val_to_name(dlt);
		desc = pcap_datalink_val_to_description(dlt);
		if (name)
			snprintf(err, errlen, "link type %d (%s%s%s) is not one shadowtap decodes (%s)",
				 dlt, name, desc ? ": " : "", desc ? desc : "", ST_PCAPIN_LINKTYPES);
		else
			snprintf(err, errlen, "link type %d (unknown to libpcap) is not one shadowtap "
				 "decodes (%s)", dlt, ST_PCAPIN_LINKTYPES);
		pcap_close(pc);
		errno = EPROTONOSUPPORT;
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		pcap_close(pc);
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	p->pc = pc;
	p->rb.fd = -1;
	p->dlt = dlt;
	return p;
}

/*
 * libpcap has opened and checked the file: when it is a classic pcap in a regular file, read
 * its records here from then on (libpcap's handle is closed; the same file, through a dup of
 * its descriptor). Anything else (pcapng, a pipe) stays with libpcap.
 */
static void try_rbuf(struct st_pcapin *p)
{
	struct rbuf *rb = &p->rb;
	FILE *f = pcap_file(p->pc);
	struct stat st;
	uint8_t hdr[4];
	uint32_t magic;
	int fd;

	if (!f || pcap_major_version(p->pc) != 2 || fstat(fileno(f), &st) || !S_ISREG(st.st_mode))
		return;
	fd = fcntl(fileno(f), F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return;
	rb->cap = st.st_size < RBUF_SIZE ? ((size_t)st.st_size | 4095) + 1 : RBUF_SIZE;
	rb->buf = malloc(rb->cap);
	if (!rb->buf || pread(fd, hdr, 4, 0) != 4) {
		free(rb->buf);
		rb->buf = NULL;
		close(fd);
		return;
	}
	memcpy(&magic, hdr, 4);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	rb->fd = fd;
	rb->off = 24;
	rb->swapped = pcap_is_swapped(p->pc);
	rb->nsec = magic == 0xa1b23c4d || magic == 0x4d3cb2a1;
	rb->snaplen = (uint32_t)pcap_snapshot(p->pc);
	/* old writers put len before caplen (version < 2.3), or may have (2.3) */
	if (pcap_minor_version(p->pc) < 3)
		rb->lengths_swapped = 1;
	else if (pcap_minor_version(p->pc) == 3)
		rb->lengths_swapped = -1;
	pcap_close(p->pc);
	p->pc = NULL;
}

struct st_pcapin *st_pcapin__open(const char *path, char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO,
							      ebuf);
	struct st_pcapin *p = finish_open(pc, ebuf, err, errlen);

	if (p)
		try_rbuf(p);
	return p;
}

struct st_pcapin *st_pcapin__fopen(FILE *f, char *err, size_t errlen)
{
	char ebuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *pc = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, ebuf);

	if (!pc)
		fclose(f);
	return finish_open(pc, ebuf, err, errlen);
}

static uint32_t rd32_as(const uint8_t *b, bool swapped)
{
	uint32_t v;

	memcpy(&v, b, 4);
	return swapped ? __builtin_bswap32(v) : v;
}

/* At least need unread bytes in rb (fewer at the end of the file). 0 or -errno. */
static int rbuf_fill(struct rbuf *rb, size_t need)
{
	ssize_t n;

	if (need > rb->cap) {
		struct stat st;
		uint8_t *b;

		/* a record the buffer of a small file cannot hold: the file grew, or the record
		 * claims more than the file has (then read on to its end: a truncation) */
		if (fstat(rb->fd, &st))
			return -errno;
		if ((uint64_t)st.st_size < rb->off + need - (rb->end - rb->start)) {
			need = rb->cap;
		} else {
			b = realloc(rb->buf, RBUF_SIZE);
			if (!b)
				return -ENOMEM;
			rb->buf = b;
			rb->cap = RBUF_SIZE;
		}
	}
	if (rb->start + need > rb->cap) {
		memmove(rb->buf, rb->buf + rb->start, rb->end - rb->start);
		rb->end -= rb->start;
		rb->start = 0;
	}
	while (rb->end - rb->start < need && !rb->eof) {
		n = pread(rb->fd, rb->buf + rb->end, rb->cap - rb->end, (off_t)rb->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		rb->eof = n == 0;
		rb->end += (size_t)n;
		rb->off += (uint64_t)n;
	}
	return 0;
}

/* The next record, checked as libpcap's sf-pcap.c checks it (its messages, its reading of
 * the time fields): 1, PCAP_ERROR_BREAK at the end, PCAP_ERROR with p->err set. The bytes
 * stay valid until the next call. */
static int rbuf_next(struct st_pcapin *p, struct pcap_pkthdr *h, const u_char **pkt)
{
	struct rbuf *rb = &p->rb;
	uint32_t caplen, len, sec, frac;
	const uint8_t *r;
	size_t left;
	int err;

	if ((err = rbuf_fill(rb, 16)))
		goto io_error;
	left = rb->end - rb->start;
	if (!left)
		return PCAP_ERROR_BREAK;
	if (left < 16) {
		snprintf(p->err, sizeof(p->err), "truncated dump file; tried to read 16 header "
			 "bytes, only got %zu", left);
		return PCAP_ERROR;
	}
	r = rb->buf + rb->start;
	caplen = rd32_as(r + 8, rb->swapped);
	len = rd32_as(r + 12, rb->swapped);
	if (rb->lengths_swapped > 0 || (rb->lengths_swapped < 0 && caplen > len)) {
		uint32_t t = caplen;

		caplen = len;
		len = t;
	}
	if (caplen > MAX_CAPLEN) {
		if (caplen > rb->snaplen)
			snprintf(p->err, sizeof(p->err), "invalid packet capture length %u, bigger "
				 "than snaplen of %u", caplen, rb->snaplen);
		else
			snprintf(p->err, sizeof(p->err), "invalid packet capture length %u, bigger "
				 "than maximum of %u", caplen, MAX_CAPLEN);
		return PCAP_ERROR;
	}
	if ((err = rbuf_fill(rb, 16 + (size_t)caplen)))
		goto io_error;
	r = rb->buf + rb->start; /* the fill may have moved it */
	left = rb->end - rb->start;
	if (left - 16 < caplen) {
		snprintf(p->err, sizeof(p->err), "truncated dump file; tried to read %u captured "
			 "bytes, only got %zu", caplen, left - 16);
		return PCAP_ERROR;
	}
	/* libpcap reads the time fields as signed 32-bit values in the host's byte order and as
	 * unsigned ones when it swaps them (SWAPLONG): the same here, so that the two readers
	 * agree even on damaged files (fuzz_pcap compares them) */
	sec = rd32_as(r, rb->swapped);
	frac = rd32_as(r + 4, rb->swapped);
	h->ts.tv_sec = rb->swapped ? (time_t)sec : (time_t)(int32_t)sec;
	h->ts.tv_usec = rb->swapped ? (suseconds_t)frac : (suseconds_t)(int32_t)frac;
	if (!rb->nsec) /* nanoseconds in tv_usec, as libpcap hands them at nanosecond precision */
		h->ts.tv_usec *= 1000;
	h->len = len;
	/* a record longer than the file's snap length: libpcap keeps the first snaplen bytes */
	h->caplen = caplen > rb->snaplen ? rb->snaplen : caplen;
	*pkt = r + 16;
	rb->start += 16 + (size_t)caplen;
	return 1;
io_error:
	snprintf(p->err, sizeof(p->err), "error reading dump file: %s", strerror(-err));
	return PCAP_ERROR;
}

int st_pcapin__next(struct st_pcapin *p, struct st_segment *seg)
{
	struct pcap_pkthdr hbuf, *h;
	const u_char *pkt;
	uint32_t cut;
	int rc;

	if (p->next_pending < p->n_pending) {
		*seg = p->pending[p->next_pending++];
		return 1;
	}
	for (;;) {
		if (!p->pc) {
			h = &hbuf;
			rc = rbuf_next(p, h, &pkt);
		} else {
			rc = pcap_next_ex(p->pc, &h, &pkt);
			if (rc != 1 && rc != PCAP_ERROR_BREAK)
				snprintf(p->err, sizeof(p->err), "%s", pcap_geterr(p->pc));
		}
		if (rc == PCAP_ERROR_BREAK)
			return 0;
		if (rc != 1) {
			p->truncated = strstr(p->err, "truncated") != NULL;
			return -EIO;
		}
		p->st.packets++;
		memset(seg, 0, sizeof(*seg));
		rc = st_pcapin_decode(p->dlt, pkt, h->caplen, seg, &cut);
		if (rc == ST_DEC_OTHER) {
			p->st.not_tcp++;
			continue;
		}
		if (rc == ST_DEC_FRAGMENT) {
			p->st.fragments++;
			continue;
		}
		if (rc != ST_DEC_TCP) {
			p->st.malformed++;
			continue;
		}
		break;
	}
	p->st.segments++;
	seg->ts_ns = (uint64_t)h->ts.tv_sec * 1000000000ull + (uint64_t)h->ts.tv_usec;
	seg->dir = -1;
	p->n_pending = p->next_pending = 0;
	if (cut) {
		/* the file lacks the tail: say so, and keep FIN/RST after it where they belong */
		struct st_segment *loss = &p->pending[p->n_pending++];
		uint8_t end_flags = seg->flags & (ST_TCP_FIN | ST_TCP_RST);

		p->st.snap_cut++;
		p->st.snap_bytes += cut;
		*loss = *seg;
		loss->kind = ST_SEG_LOSS;
		loss->flags &= ~(ST_TCP_SYN | ST_TCP_FIN | ST_TCP_RST);
		loss->seq = seg->seq + !!(seg->flags & ST_TCP_SYN) + seg->len;
		loss->len = cut;
		loss->data = NULL;
		seg->flags &= ~end_flags;
		if (end_flags) {
			struct st_segment *fin = &p->pending[p->n_pending++];

			*fin = *loss;
			fin->kind = ST_SEG_DATA;
			fin->flags = end_flags | (seg->flags & ST_TCP_ACK);
			fin->seq = loss->seq + cut;
			fin->len = 0;
		}
	}
	return 1;
}

const char *st_pcapin__error(const struct st_pcapin *p)
{
	return p->err;
}

bool st_pcapin__truncated(const struct st_pcapin *p)
{
	return p->truncated;
}

int st_pcapin__linktype(const struct st_pcapin *p)
{
	return p->dlt;
}

bool st_pcapin__buffered(const struct st_pcapin *p)
{
	return !p->pc;
}

void st_pcapin__stats(const struct st_pcapin *p, struct st_pcapin_stats *out)
{
	*out = p->st;
}

int st_pcapin__position(const struct st_pcapin *p, uint64_t *pos, uint64_t *size)
{
	struct stat st;
	FILE *f;
	long at;
	int fd;

	if (p->rb.fd >= 0) {
		fd = p->rb.fd;
		*pos = p->rb.off - (p->rb.end - p->rb.start);
	} else {
		f = pcap_file(p->pc);
		at = f ? ftell(f) : -1;
		if (at < 0)
			return -1;
		fd = fileno(f);
		*pos = (uint64_t)at;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || !st.st_size)
		return -1;
	*size = (uint64_t)st.st_size;
	return 0;
}

void st_pcapin__close(struct st_pcapin *p)
{
	if (!p)
		return;
	if (p->pc)
		pcap_close(p->pc);
	if (p->rb.fd >= 0)
		close(p->rb.fd);
	free(p->rb.buf);
	free(p);
}
