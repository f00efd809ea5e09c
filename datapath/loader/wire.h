/* Byte-level helpers for the loader's wire protocol (see palisade-loader.c):
 * a growable output buffer and a bounds-checked input cursor, both
 * little-endian. A cursor that runs past its end turns "bad" and stays bad;
 * every getter then returns zeroes, so a handler parses the whole request and
 * checks cur_ok() once at the end instead of after each field. */
#ifndef PALISADE_LOADER_WIRE_H
#define PALISADE_LOADER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;
	size_t len, cap;
};

/* Appenders abort the process on allocation failure: the loader cannot
 * answer anything meaningful without memory, and the agent restarts it. */
void buf_put(struct buf *b, const void *p, size_t n);
void *buf_grow(struct buf *b, size_t n); /* n bytes appended, returned for filling */
void buf_u8(struct buf *b, uint8_t v);
void buf_u16(struct buf *b, uint16_t v);
void buf_u32(struct buf *b, uint32_t v);
void buf_str(struct buf *b, const char *s); /* u16 length | bytes, no NUL */
void buf_bytes(struct buf *b, const void *p, uint32_t n); /* u32 length | bytes */

struct cursor {
	const uint8_t *p;
	size_t left;
	bool bad;
};

uint8_t cur_u8(struct cursor *c);
uint16_t cur_u16(struct cursor *c);
uint32_t cur_u32(struct cursor *c);
const void *cur_take(struct cursor *c, size_t n); /* NULL (and bad) if short */
/* count elements of size bytes each (overflow-safe). */
const void *cur_array(struct cursor *c, uint32_t count, uint64_t size);
/* u16 length | bytes into dst as a C string; bad if it does not fit or
 * contains a NUL. */
void cur_str(struct cursor *c, char *dst, size_t cap);
/* u32 length | bytes, returned in place (not copied). */
const void *cur_bytes(struct cursor *c, uint32_t *len);
/* True when every field was present and nothing is left over. */
bool cur_ok(const struct cursor *c);

uint32_t get_le32(const uint8_t *p);
void put_le32(uint8_t *p, uint32_t v);

#endif
