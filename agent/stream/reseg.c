/* SPDX-License-Identifier: GPL-2.0-only */
/* Re-segmentation: a tee stream's connection rebuilt as TCP segments (reseg.h). */
#include <string.h>

#include "bpf/shadowtap.h"
#include "reseg.h"

void st_reseg_init(struct st_reseg *r, const struct st_flow_key *key, uint64_t id, uint64_t seed)
{
	memset(r, 0, sizeof(*r));
	r->key = *key;
	r->isn[0] = (uint32_t)(id * 2654435761u);
	r->isn[1] = (uint32_t)((id ^ seed) * 2246822519u);
}

void st_reseg_seg(const struct st_reseg *r, struct st_segment *s, int dir, uint8_t flags,
		  uint64_t ts)
{
	memset(s, 0, sizeof(*s));
	if (dir == ST_DIR_IN) {
		s->key = r->key;
	} else {
		s->key.src = r->key.dst;
		s->key.dst = r->key.src;
		s->key.sport = r->key.dport;
		s->key.dport = r->key.sport;
	}
	s->ts_ns = ts;
	s->dir = (int8_t)dir;
	s->flags = flags;
	s->window = ST_RESEG_WINDOW;
	s->seq = r->isn[dir] + 1 + (uint32_t)r->next[dir];
	s->ack = r->isn[!dir] + 1 + (uint32_t)r->next[!dir] + (r->ended[!dir] ? 1 : 0);
}

void st_reseg_open(struct st_reseg *r, uint64_t ts, st_reseg_emit_fn *emit, void *ctx)
{
	struct st_segment s;

	if (!emit)
		return;
	st_reseg_seg(r, &s, ST_DIR_IN, ST_TCP_SYN, ts);
	s.seq = r->isn[0];
	s.ack = 0;
	emit(ctx, &s);
	st_reseg_seg(r, &s, ST_DIR_OUT, ST_TCP_SYN | ST_TCP_ACK, ts);
	s.seq = r->isn[1];
	emit(ctx, &s);
	st_reseg_seg(r, &s, ST_DIR_IN, ST_TCP_ACK, ts);
	emit(ctx, &s);
}

void st_reseg_data(struct st_reseg *r, int dir, const uint8_t *d, uint32_t len, uint64_t ts,
		   st_reseg_emit_fn *emit, void *ctx)
{
	struct st_segment s;

	if (!emit) {
		r->next[dir] += len;
		return;
	}
	for (uint32_t o = 0; o < len; o += ST_RESEG_MSS) {
		uint32_t n = len - o < ST_RESEG_MSS ? len - o : ST_RESEG_MSS;

		st_reseg_seg(r, &s, dir, ST_TCP_ACK | (o + n == len ? ST_TCP_PSH : 0), ts);
		s.data = d + o;
		s.len = n;
		emit(ctx, &s);
		r->next[dir] += n;
	}
}

void st_reseg_gap(struct st_reseg *r, int dir, uint64_t len, uint64_t ts,
		  st_reseg_emit_fn *emit, void *ctx)
{
	struct st_segment s;

	if (!emit) {
		r->next[dir] += len;
		return;
	}
	for (uint64_t o = 0; o < len;) {
		uint32_t n = len - o > ST_RESEG_LOSS_MAX ? ST_RESEG_LOSS_MAX : (uint32_t)(len - o);

		st_reseg_seg(r, &s, dir, ST_TCP_ACK, ts);
		s.kind = ST_SEG_LOSS;
		s.len = n;
		emit(ctx, &s);
		r->next[dir] += n;
		o += n;
	}
}

void st_reseg_end(struct st_reseg *r, int dir, enum st_reasm_end why, uint64_t ts,
		  st_reseg_emit_fn *emit, void *ctx)
{
	struct st_segment s;

	if (emit && (why == ST_END_FIN || why == ST_END_RST)) {
		uint8_t flags = why == ST_END_FIN ? ST_TCP_FIN | ST_TCP_ACK : ST_TCP_RST;

		st_reseg_seg(r, &s, dir, flags, ts);
		emit(ctx, &s);
	}
	r->ended[dir] = true;
}

void st_reseg_restart(struct st_reseg *r, uint64_t ts, st_reseg_emit_fn *emit, void *ctx)
{
	struct st_segment s;

	st_reseg_seg(r, &s, ST_DIR_IN, ST_TCP_RST, ts);
	emit(ctx, &s);
	st_reseg_seg(r, &s, ST_DIR_IN, ST_TCP_SYN, ts);
	s.seq--; /* the SYN takes the sequence number before the next byte */
	s.ack = 0;
	emit(ctx, &s);
	st_reseg_seg(r, &s, ST_DIR_OUT, ST_TCP_SYN | ST_TCP_ACK, ts);
	s.seq--;
	emit(ctx, &s);
	st_reseg_seg(r, &s, ST_DIR_IN, ST_TCP_ACK, ts);
	emit(ctx, &s);
}
