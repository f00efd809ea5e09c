#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

void *buf_grow(struct buf *b, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *data = realloc(b->data, cap);
		if (!data) {
			fprintf(stderr, "palisade-loader: out of memory (%zu bytes)\n", cap);
			abort();
		}
		b->data = data;
		b->cap = cap;
	}
	void *p = b->data + b->len;
	b->len += n;
	return p;
}

void buf_put(struct buf *b, const void *p, size_t n)
{
	if (n)
		memcpy(buf_grow(b, n), p, n);
}

void buf_u8(struct buf *b, uint8_t v)
{
	buf_put(b, &v, 1);
}

void buf_u16(struct buf *b, uint16_t v)
{
	uint8_t p[2] = { v, v >> 8 };
	buf_put(b, p, 2);
}

void buf_u32(struct buf *b, uint32_t v)
{
	put_le32(buf_grow(b, 4), v);
}

void buf_str(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	if (n > UINT16_MAX)
		n = UINT16_MAX;
	buf_u16(b, n);
	buf_put(b, s, n);
}

void buf_bytes(struct buf *b, const void *p, uint32_t n)
{
	buf_u32(b, n);
	buf_put(b, p, n);
}

const void *cur_take(struct cursor *c, size_t n)
{
	if (c->bad || c->left < n) {
		c->bad = true;
		return NULL;
	}
	const void *p = c->p;
	c->p += n;
	c->left -= n;
	return p;
}

const void *cur_array(struct cursor *c, uint32_t count, uint64_t size)
{
	if (size && count > c->left / size) {
		c->bad = true;
		return NULL;
	}
	return cur_take(c, count * size);
}

uint8_t cur_u8(struct cursor *c)
{
	const uint8_t *p = cur_take(c, 1);
	return p ? p[0] : 0;
}

uint16_t cur_u16(struct cursor *c)
{
	const uint8_t *p = cur_take(c, 2);
	return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

uint32_t cur_u32(struct cursor *c)
{
	const uint8_t *p = cur_take(c, 4);
	return p ? get_le32(p) : 0;
}

void cur_str(struct cursor *c, char *dst, size_t cap)
{
	uint16_t n = cur_u16(c);
	const char *p = cur_take(c, n);
	dst[0] = '\0';
	if (!p)
		return;
	if (n >= cap || memchr(p, '\0', n)) {
		c->bad = true;
		return;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
}

const void *cur_bytes(struct cursor *c, uint32_t *len)
{
	*len = cur_u32(c);
	return cur_take(c, *len);
}

bool cur_ok(const struct cursor *c)
{
	return !c->bad && c->left == 0;
}
