/* SPDX-License-Identifier: GPL-2.0-only */
/* Little-endian integers in byte buffers: the tee stream's records and the Kafka messages
 * that carry them (docs/TEE.md, docs/KAFKA.md). */
#ifndef ST_LE_H
#define ST_LE_H

#include <stdint.h>

static inline void st_le_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void st_le_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void st_le_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t st_le_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t st_le_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t st_le_get64(const uint8_t *p)
{
	return (uint64_t)st_le_get32(p) | (uint64_t)st_le_get32(p + 4) << 32;
}

#endif /* ST_LE_H */
