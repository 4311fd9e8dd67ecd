/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Test harness shared by the shadow engine's tests (test_shadow.c, test_compare.c):
 * a captured connection fed to st_shadow__feed() segment by segment, as the tap
 * delivers it (client 10.0.0.2:CPORT -> service 10.0.0.1:SPORT), and the small
 * helpers both need. Each test keeps its own model of production's answers.
 */
#ifndef ST_TEST_SHADOW_HARNESS_H
#define ST_TEST_SHADOW_HARNESS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "shadow.h"

struct th_conn {
	struct st_flow_key k;  /* client -> service */
	uint32_t cseq, sseq;   /* next sequence number of each side */
};

/* The capture's clock: each segment th_step_ns after the last. */
static uint64_t th_clock_ns;
static uint64_t th_step_ns = 1000;

/* One segment of c, from the client or from the service; loss: a loss mark of len bytes. */
static void th_seg(struct st_shadow *sh, const struct th_conn *c, bool from_client, uint8_t flags,
		   uint32_t seq, const void *data, uint32_t len, bool loss)
{
	struct st_segment s = { 0 };

	if (from_client) {
		s.key = c->k;
	} else {
		s.key.src = c->k.dst;
		s.key.dst = c->k.src;
		s.key.sport = c->k.dport;
		s.key.dport = c->k.sport;
	}
	s.ts_ns = (th_clock_ns += th_step_ns);
	s.seq = seq;
	s.flags = flags;
	s.kind = loss ? ST_SEG_LOSS : ST_SEG_DATA;
	s.dir = -1;
	s.len = len;
	s.data = data;
	st_shadow__feed(sh, &s);
}

/* c's addresses and first sequence numbers (nothing is fed). */
static void th_init(struct th_conn *c, uint16_t cport, uint16_t sport)
{
	memset(c, 0, sizeof(*c));
	c->k.src.family = c->k.dst.family = 4;
	c->k.src.a[0] = htonl(0x0a000002);
	c->k.dst.a[0] = htonl(0x0a000001);
	c->k.sport = cport;
	c->k.dport = sport;
	c->cseq = 1000;
	c->sseq = 500000;
}

/* SYN, SYN-ACK, ACK. */
static void th_handshake(struct st_shadow *sh, struct th_conn *c)
{
	th_seg(sh, c, true, ST_TCP_SYN, c->cseq++, NULL, 0, false);
	th_seg(sh, c, false, ST_TCP_SYN | ST_TCP_ACK, c->sseq++, NULL, 0, false);
	th_seg(sh, c, true, ST_TCP_ACK, c->cseq, NULL, 0, false);
}

/* Payload from one side, the next sequence number advanced. */
static void th_data(struct st_shadow *sh, struct th_conn *c, bool from_client, const void *d,
		    size_t len)
{
	uint32_t *seq = from_client ? &c->cseq : &c->sseq;

	th_seg(sh, c, from_client, ST_TCP_ACK | ST_TCP_PSH, *seq, d, (uint32_t)len, false);
	*seq += (uint32_t)len;
}

/* Both sides close: FIN, FIN, ACK. */
static void th_fin(struct st_shadow *sh, struct th_conn *c)
{
	th_seg(sh, c, true, ST_TCP_FIN | ST_TCP_ACK, c->cseq++, NULL, 0, false);
	th_seg(sh, c, false, ST_TCP_FIN | ST_TCP_ACK, c->sseq++, NULL, 0, false);
	th_seg(sh, c, true, ST_TCP_ACK, c->cseq, NULL, 0, false);
}

static inline uint64_t th_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A loopback port nothing listens on (connections to it are refused). */
static inline uint16_t th_closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &al);
	close(fd);
	return ntohs(a.sin_port);
}

#endif /* ST_TEST_SHADOW_HARNESS_H */
