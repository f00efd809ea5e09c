/* palisade-loader: loads Palisade's eBPF objects, pins them, attaches their
 * programs to tc hooks and edits their maps on behalf of the node agent,
 * which keeps it running as a child and drives it over stdin/stdout. Logs go
 * to stderr (`-v` adds libbpf's debug output). When stdin closes it exits:
 * pins and tc attachments STAY, so enforcement goes on while the agent is
 * down, and a new loader picks the state up with LOAD (maps are pinned by
 * name and reused) and ATTACH (which replaces the filter in place).
 *
 * It acts in the network namespace it was started in (ifindexes are that
 * namespace's): run it with `nsenter --net=/var/run/netns/NAME` for another.
 *
 * Protocol (mirrored by datapath/loader-client.ts; keep the two in sync).
 * All integers little-endian. A str is `u16 length | bytes` (no NUL), a blob
 * is `u32 length | bytes`.
 *
 *   request   u32 length | u32 request_id | u8 op     | payload
 *   response  u32 length | u32 request_id | u8 status | payload
 *
 * `length` counts the bytes after itself. Requests are served one at a time
 * in arrival order, so a client may pipeline them and match by id. A frame
 * over MAX_FRAME bytes is read and discarded and answered with an error, as
 * is an unknown op or a malformed payload; a frame too short to hold an id
 * is answered with request_id 0 (the client should treat that as fatal).
 *
 * status 0 ok: payload as below.
 * status 1 error: payload is the message (text). It names the object, map
 *          or program concerned (not the op, which the client knows) and
 *          ends with the tail of libbpf's warnings during the request (e.g.
 *          the verifier log) when libbpf had something to say.
 * status 2 batch error (UPDATE, DELETE): `u32 index | u32 errno | u32 applied |
 *          message text`: entry `index` failed with `errno`; every entry
 *          before it was processed (`applied` of them changed the map), no
 *          entry after it was attempted. Nothing is rolled back, so the map
 *          state is known exactly.
 *
 * op  name      request payload -> ok payload
 *  1  LOAD      str object_path, str pin_dir, u16 globals,
 *               globals x (str name, blob value), u16 sizes,
 *               sizes x (str map, u32 max_entries)
 *               -> object (below)
 *               Open, configure, load, pin: the globals (load-time settings,
 *               `const volatile` in .rodata) are set between open and load
 *               and must match the variable's size; so are the sizes
 *               (max_entries) of the maps named, e.g. a ring buffer's bytes.
 *               Maps marked LIBBPF_PIN_BY_NAME are pinned at <pin_dir>/<map>,
 *               REUSING an existing pin (contents survive restarts). A pin
 *               whose type, sizes or flags differ from the map's (another
 *               datapath version, or a changed size) is SET ASIDE first:
 *               renamed to <pin_dir>/migrate/<map> (replacing one left
 *               there), so the load creates the map anew and the old one
 *               keeps serving the programs still attached to it until the
 *               agent has copied its entries (DUMP_PINNED) and unlinked it
 *               (docs/adr/0007-pinned-map-migration.md). Programs are
 *               pinned at <pin_dir>/progs/<prog>, replacing old pins by an
 *               atomic rename (from <pin_dir>/progs-staged/). LOADing a path again replaces that object
 *               (programs attached from the old one stay attached until
 *               re-ATTACHed). Names must be unique across loaded objects,
 *               except maps that share a pin.
 *  2  ATTACH    u32 ifindex, str program, u8 hook (0 tc ingress, 1 tc egress)
 *               -> u32 prog_id
 *               clsact qdisc (kept if present) + direct-action filter with a
 *               fixed handle and priority, created or REPLACED atomically.
 *  3  DETACH    u32 ifindex, u8 hook -> u8 removed (0: no such interface,
 *               qdisc or filter; not an error). The qdisc is left alone.
 *  4  UPDATE    str map, u32 count, u32 key_size, u32 value_size,
 *               count x (key, value) -> u32 applied (= count)
 *  5  DELETE    str map, u32 count, u32 key_size, count x key
 *               -> u32 deleted (absent keys count as done, not deleted)
 *               Both in order, through the kernel's batch ops where the map
 *               type has them, else element by element (LPM tries); sizes
 *               must equal the map's (per-CPU values: value_size rounded up
 *               to 8, times possible CPUs).
 *  6  DUMP      str map -> u32 count, u32 key_size, u32 value_size,
 *               count x (key, value)
 *  7  TEST_RUN  str program, u32 repeat, blob packet, blob ctx (a prefix of
 *               struct __sk_buff, empty for none), u32 ifindex (0: none;
 *               else set in the ctx and must exist here)
 *               -> u32 retval, u32 duration (ns per run, as the kernel says),
 *               blob packet_out
 *  8  LAYOUT    u16 count, count x str struct_name
 *               -> u16 count, count x (str name, u8 found, and when found:
 *               u32 size, u16 members, members x (str name, u32 offset,
 *               u32 size)), from the BTF of the first loaded object that has
 *               the struct. Offsets and sizes in bytes.
 *  9  STATUS    (empty) -> u16 PROTOCOL_VERSION, u32 possible_cpus,
 *               u16 objects, objects x object, u16 attachments,
 *               attachments x (u32 ifindex, u8 hook, str program, u32 prog_id)
 *               (attachments made by this process)
 *
 * 10  DUMP_PINNED str path -> as DUMP, of the map pinned at path (one
 *               set aside by LOAD, say), which no loaded object need hold.
 *
 * 11  XDP_ATTACH u32 ifindex, str program, u8 mode (0 auto: the driver's
 *               native XDP where the device has it, else generic; 1 native
 *               only; 2 generic only) -> u32 prog_id, u8 mode (1 native,
 *               2 generic). Replaces, atomically (XDP_FLAGS_REPLACE), a
 *               program of the same name already attached there (ours, by
 *               an earlier loader), in its mode unless another was asked
 *               for; refuses a device whose XDP program is another's.
 * 12  XDP_DETACH u32 ifindex, str program -> u8 removed (0: no such
 *               device, no XDP program, or one of another name: left
 *               alone). The program need not be loaded here.
 *
 *               XDP attachments are not in STATUS's list (tc hooks only).
 *
 * object = str path, str pin_dir, u16 programs, programs x (str name,
 *          u32 prog_id, u32 prog_type), u16 maps, maps x (str name, u32 type,
 *          u32 key_size, u32 value_size, u32 max_entries, u8 pinned)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>

#include "wire.h"

#define PROTOCOL_VERSION 2
#define MAX_FRAME (64u << 20)
/* How much of libbpf's warnings an error message carries: the tail, where
 * the verifier says what it rejected. */
#define LOG_TAIL 8192
/* Our one filter per hook. Fixed, so that ATTACH replaces and DETACH finds it. */
#define TC_HANDLE 1
#define TC_PRIORITY 1
#define DUMP_CHUNK 4096
/* Room for a test-run program that grows the packet. */
#define TEST_RUN_SLACK 512
/* The kernel answers a batch op that a map type lacks with ENOTSUPP, its own
 * code, which <errno.h> does not define. */
#define ENOTSUPP 524

enum { OP_LOAD = 1, OP_ATTACH, OP_DETACH, OP_UPDATE, OP_DELETE, OP_DUMP, OP_TEST_RUN, OP_LAYOUT, OP_STATUS, OP_DUMP_PINNED,
       OP_XDP_ATTACH, OP_XDP_DETACH };
enum { ST_OK = 0, ST_ERROR = 1, ST_BATCH = 2 };
enum { HOOK_INGRESS = 0, HOOK_EGRESS = 1 };

struct object {
	char path[PATH_MAX];
	char pin_dir[PATH_MAX];
	struct bpf_object *obj;
};

struct attachment {
	uint32_t ifindex;
	uint8_t hook;
	char prog[NAME_MAX + 1];
	uint32_t prog_id;
};

static struct object *objects;
static size_t n_objects;
static struct attachment *attachments;
static size_t n_attachments;
static int possible_cpus;
static bool verbose;

/* ---- libbpf logging: everything to stderr, warnings also kept for errors */

static char log_tail[LOG_TAIL + 1];
static size_t log_len;
static size_t log_dropped;

static void log_keep(const char *s, size_t n)
{
	if (n > LOG_TAIL) {
		log_dropped += n - LOG_TAIL;
		s += n - LOG_TAIL;
		n = LOG_TAIL;
	}
	if (log_len + n > LOG_TAIL) {
		size_t drop = log_len + n - LOG_TAIL;
		memmove(log_tail, log_tail + drop, log_len - drop);
		log_len -= drop;
		log_dropped += drop;
	}
	memcpy(log_tail + log_len, s, n);
	log_len += n;
	log_tail[log_len] = '\0';
}

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg;
	int n;

	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	n = vasprintf(&msg, fmt, ap);
	if (n < 0)
		return 0;
	fputs(msg, stderr); /* libbpf's lines start with "libbpf: " */
	if (level == LIBBPF_WARN)
		log_keep(msg, n);
	free(msg);
	return n;
}

/* ---- responses */

static void vput_message(struct buf *out, const char *fmt, va_list ap)
{
	char *msg;
	int n = vasprintf(&msg, fmt, ap);

	if (n < 0)
		return;
	buf_put(out, msg, n);
	free(msg);
	if (log_len) {
		/* A cut log resumes at its next whole line. */
		const char *nl = log_dropped ? memchr(log_tail, '\n', log_len) : NULL;
		size_t skip = nl ? (size_t)(nl + 1 - log_tail) : 0;
		char note[64];
		int m = log_dropped ? snprintf(note, sizeof(note), "\n[%zu bytes of libbpf log dropped]",
					       log_dropped + skip)
				    : 0;
		buf_put(out, note, m);
		buf_u8(out, '\n');
		buf_put(out, log_tail + skip, log_len - skip);
	}
}

/* Replaces whatever the handler wrote with an error message. */
static int fail(struct buf *out, const char *fmt, ...)
{
	va_list ap;

	out->len = 0;
	va_start(ap, fmt);
	vput_message(out, fmt, ap);
	va_end(ap);
	return ST_ERROR;
}

static int malformed(struct buf *out, const char *op)
{
	return fail(out, "malformed %s request", op);
}

static int fail_batch(struct buf *out, uint32_t index, int err, uint32_t applied, const char *fmt, ...)
{
	va_list ap;

	out->len = 0;
	buf_u32(out, index);
	buf_u32(out, err);
	buf_u32(out, applied);
	va_start(ap, fmt);
	vput_message(out, fmt, ap);
	va_end(ap);
	return ST_BATCH;
}

/* Writes a u16 count into a placeholder put at `at` before the items. */
static void patch_u16(struct buf *out, size_t at, uint16_t v)
{
	out->data[at] = v;
	out->data[at + 1] = v >> 8;
}

/* ---- the registry of what this process loaded and attached */

static struct bpf_program *find_program(const char *name)
{
	for (size_t i = 0; i < n_objects; i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(objects[i].obj, name);
		if (p)
			return p;
	}
	return NULL;
}

static struct bpf_map *find_map(const char *name)
{
	for (size_t i = 0; i < n_objects; i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(objects[i].obj, name);
		if (m)
			return m;
	}
	return NULL;
}

/* A program or map name of `obj` that another loaded object (not the one
 * `obj` replaces) also has, unless both are the same pinned map. */
static const char *name_clash(struct bpf_object *obj, const char *path)
{
	struct bpf_program *p;
	struct bpf_map *m;

	for (size_t i = 0; i < n_objects; i++) {
		struct bpf_object *other = objects[i].obj;
		if (strcmp(objects[i].path, path) == 0)
			continue;
		bpf_object__for_each_program(p, obj)
			if (bpf_object__find_program_by_name(other, bpf_program__name(p)))
				return bpf_program__name(p);
		bpf_object__for_each_map(m, obj) {
			struct bpf_map *o = bpf_object__find_map_by_name(other, bpf_map__name(m));
			const char *a = bpf_map__pin_path(m), *b = o ? bpf_map__pin_path(o) : NULL;
			if (o && !(a && b && strcmp(a, b) == 0))
				return bpf_map__name(m);
		}
	}
	return NULL;
}

static void *grow_array(void *array, size_t n, size_t size)
{
	void *p = reallocarray(array, n, size);
	if (!p) {
		fprintf(stderr, "palisade-loader: out of memory\n");
		abort();
	}
	return p;
}

/* Takes ownership of obj, replacing an object loaded from the same path. */
static struct object *register_object(struct bpf_object *obj, const char *path, const char *pin_dir)
{
	size_t i;

	for (i = 0; i < n_objects && strcmp(objects[i].path, path) != 0; i++)
		;
	if (i == n_objects)
		objects = grow_array(objects, ++n_objects, sizeof(*objects));
	else
		bpf_object__close(objects[i].obj);
	snprintf(objects[i].path, sizeof(objects[i].path), "%s", path);
	snprintf(objects[i].pin_dir, sizeof(objects[i].pin_dir), "%s", pin_dir);
	objects[i].obj = obj;
	return &objects[i];
}

static struct attachment *find_attachment(uint32_t ifindex, uint8_t hook)
{
	for (size_t i = 0; i < n_attachments; i++)
		if (attachments[i].ifindex == ifindex && attachments[i].hook == hook)
			return &attachments[i];
	return NULL;
}

static uint32_t prog_id(const struct bpf_program *prog)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) ? 0 : info.id;
}

static bool is_percpu(const struct bpf_map *map)
{
	enum bpf_map_type t = bpf_map__type(map);
	return t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

/* Bytes of one value as the syscalls (and the protocol) carry it. */
static uint32_t value_bytes(const struct bpf_map *map)
{
	uint32_t size = bpf_map__value_size(map);
	return is_percpu(map) ? ((size + 7) & ~7u) * possible_cpus : size;
}

static void put_object(struct buf *out, const struct object *o)
{
	struct bpf_program *p;
	struct bpf_map *m;
	size_t at;
	uint16_t n = 0;

	buf_str(out, o->path);
	buf_str(out, o->pin_dir);
	at = out->len;
	buf_u16(out, 0);
	bpf_object__for_each_program(p, o->obj) {
		buf_str(out, bpf_program__name(p));
		buf_u32(out, prog_id(p));
		buf_u32(out, bpf_program__type(p));
		n++;
	}
	patch_u16(out, at, n);
	at = out->len;
	n = 0;
	buf_u16(out, 0);
	bpf_object__for_each_map(m, o->obj) {
		buf_str(out, bpf_map__name(m));
		buf_u32(out, bpf_map__type(m));
		buf_u32(out, bpf_map__key_size(m));
		buf_u32(out, bpf_map__value_size(m));
		buf_u32(out, bpf_map__max_entries(m));
		buf_u8(out, bpf_map__is_pinned(m));
		n++;
	}
	patch_u16(out, at, n);
}

/* ---- LOAD */

/* New program pins are staged in a directory of their own: bpffs refuses
 * names with dots, and a suffixed name could be another program's. */
static bool prog_pin_path(char *dst, const char *pin_dir, const char *name, bool staged)
{
	int n = snprintf(dst, PATH_MAX, "%s/%s/%s", pin_dir, staged ? "progs-staged" : "progs", name);
	return n > 0 && n < PATH_MAX;
}

static bool make_dir(const char *parent, const char *name)
{
	char dir[PATH_MAX];
	int n = snprintf(dir, sizeof(dir), "%s%s%s", parent, name[0] ? "/" : "", name);
	return n > 0 && n < PATH_MAX && (mkdir(dir, 0700) == 0 || errno == EEXIST);
}

/* Pins every program at <pin_dir>/progs/<name>: all new pins are made first,
 * then renamed over the old ones, so a path never points at nothing and a
 * failure while pinning leaves the old pins as they were. */
static int pin_programs(struct buf *out, struct bpf_object *obj, const char *pin_dir)
{
	char tmp[PATH_MAX], final[PATH_MAX];
	struct bpf_program *p;
	int status = ST_OK, err;

	if (!make_dir(pin_dir, "") || !make_dir(pin_dir, "progs") || !make_dir(pin_dir, "progs-staged"))
		return fail(out, "create the program pin directories in %s: %s", pin_dir, strerror(errno));
	bpf_object__for_each_program(p, obj) {
		if (!prog_pin_path(tmp, pin_dir, bpf_program__name(p), true)) {
			status = fail(out, "pin path for %s is too long", bpf_program__name(p));
			break;
		}
		unlink(tmp); /* left by a loader that died here */
		err = bpf_program__pin(p, tmp);
		if (err) {
			status = fail(out, "pin %s at %s: %s", bpf_program__name(p), tmp, strerror(-err));
			break;
		}
	}
	bpf_object__for_each_program(p, obj) {
		if (!prog_pin_path(tmp, pin_dir, bpf_program__name(p), true) ||
		    !prog_pin_path(final, pin_dir, bpf_program__name(p), false))
			break;
		if (status != ST_OK)
			unlink(tmp);
		else if (rename(tmp, final))
			status = fail(out, "rename %s to %s: %s", tmp, final, strerror(errno));
	}
	return status;
}

/* Sets a global variable of one of the object's data sections before load,
 * as a skeleton would: `const volatile` load-time configuration in .rodata,
 * found by name through the BTF of the section. */
static int set_global(struct buf *out, struct bpf_object *obj, const char *name, const void *value,
		      uint32_t size)
{
	const struct btf *btf = bpf_object__btf(obj);
	uint32_t n = btf ? btf__type_cnt(btf) : 0;

	for (uint32_t id = 1; id < n; id++) {
		const struct btf_type *sec = btf__type_by_id(btf, id);
		if (!btf_is_datasec(sec))
			continue;
		const struct btf_var_secinfo *v = btf_var_secinfos(sec);
		for (int i = 0; i < btf_vlen(sec); i++, v++) {
			if (strcmp(btf__name_by_offset(btf, btf__type_by_id(btf, v->type)->name_off), name) != 0)
				continue;
			if (size != v->size)
				return fail(out, "global %s is %u bytes, not %u", name, v->size, size);
			/* ".rodata" and the like name the section's map */
			struct bpf_map *map = bpf_object__find_map_by_name(obj, btf__name_by_offset(btf, sec->name_off));
			size_t len;
			const uint8_t *init = map ? bpf_map__initial_value(map, &len) : NULL;
			if (!init || v->offset + size > len)
				return fail(out, "global %s has no initial value to set", name);
			uint8_t *copy = malloc(len);
			if (!copy)
				return fail(out, "global %s: out of memory", name);
			memcpy(copy, init, len);
			memcpy(copy + v->offset, value, size);
			int err = bpf_map__set_initial_value(map, copy, len);
			free(copy);
			return err ? fail(out, "set global %s: %s", name, strerror(-err)) : ST_OK;
		}
	}
	return fail(out, "no global variable named %s", name);
}

/* Renames every existing pin of obj's maps that the load could not reuse
 * (type, key or value size, max_entries or flags differ) to
 * <pin_dir>/migrate/<map>, replacing an older one there. */
static int set_aside_incompatible_pins(struct buf *out, struct bpf_object *obj, const char *pin_dir)
{
	struct bpf_map *m;
	char aside[PATH_MAX];

	bpf_object__for_each_map(m, obj) {
		const char *pin = bpf_map__pin_path(m);
		struct bpf_map_info info = {};
		uint32_t len = sizeof(info);
		int fd, err;

		if (!pin)
			continue;
		fd = bpf_obj_get(pin);
		if (fd < 0)
			continue; /* no pin yet: the load makes one */
		err = bpf_obj_get_info_by_fd(fd, &info, &len);
		close(fd);
		if (err)
			return fail(out, "read the pinned map %s: %s", pin, strerror(-err));
		if (info.type == bpf_map__type(m) && info.key_size == bpf_map__key_size(m) &&
		    info.value_size == bpf_map__value_size(m) && info.max_entries == bpf_map__max_entries(m) &&
		    info.map_flags == bpf_map__map_flags(m))
			continue;
		int n = snprintf(aside, sizeof(aside), "%s/migrate/%s", pin_dir, bpf_map__name(m));
		if (n < 0 || n >= (int)sizeof(aside) || !make_dir(pin_dir, "migrate"))
			return fail(out, "cannot make %s/migrate for the old %s: %s", pin_dir, bpf_map__name(m), strerror(errno));
		if (rename(pin, aside))
			return fail(out, "set the old pin %s aside: %s", pin, strerror(errno));
	}
	return ST_OK;
}

static int op_load(struct cursor *in, struct buf *out)
{
	char path[PATH_MAX], pin_dir[PATH_MAX], global[NAME_MAX + 1];
	struct bpf_object *obj;
	const char *clash;
	int status = ST_OK, err;

	cur_str(in, path, sizeof(path));
	cur_str(in, pin_dir, sizeof(pin_dir));
	uint16_t n_globals = cur_u16(in);
	if (in->bad || !path[0] || !pin_dir[0])
		return malformed(out, "LOAD");

	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	obj = bpf_object__open_file(path, &opts);
	if (!obj)
		return fail(out, "%s: %s", path, strerror(errno));
	for (uint16_t i = 0; i < n_globals && status == ST_OK; i++) {
		uint32_t size;
		cur_str(in, global, sizeof(global));
		const void *value = cur_bytes(in, &size);
		status = in->bad ? malformed(out, "LOAD") : set_global(out, obj, global, value, size);
	}
	if (status != ST_OK)
		goto out;
	uint16_t n_sizes = cur_u16(in);
	for (uint16_t i = 0; i < n_sizes && status == ST_OK; i++) {
		char map_name[NAME_MAX + 1];
		struct bpf_map *map;
		uint32_t max_entries;

		cur_str(in, map_name, sizeof(map_name));
		max_entries = cur_u32(in);
		if (in->bad) {
			status = malformed(out, "LOAD");
			break;
		}
		map = bpf_object__find_map_by_name(obj, map_name);
		if (!map)
			status = fail(out, "%s: no map %s to size", path, map_name);
		else if ((err = bpf_map__set_max_entries(map, max_entries)))
			status = fail(out, "%s: map %s cannot hold %u entries: %s", path, map_name, max_entries, strerror(-err));
	}
	if (status != ST_OK)
		goto out;
	if (!cur_ok(in)) {
		status = malformed(out, "LOAD");
		goto out;
	}
	clash = name_clash(obj, path);
	if (clash) {
		status = fail(out, "%s: the name %s is taken by another loaded object", path, clash);
		goto out;
	}
	status = set_aside_incompatible_pins(out, obj, pin_dir);
	if (status != ST_OK)
		goto out;
	err = bpf_object__load(obj);
	if (err) {
		status = fail(out, "%s: %s", path, strerror(-err));
		goto out;
	}
	status = pin_programs(out, obj, pin_dir);
	if (status != ST_OK)
		goto out;
	put_object(out, register_object(obj, path, pin_dir));
	obj = NULL;
out:
	/* After a failed load libbpf has unpinned the maps it pinned; after a
	 * failure to pin programs, new map pins stay: empty maps the next LOAD
	 * reuses. */
	bpf_object__close(obj);
	return status;
}

/* ---- ATTACH / DETACH */

static enum bpf_tc_attach_point tc_point(uint8_t hook)
{
	return hook == HOOK_INGRESS ? BPF_TC_INGRESS : BPF_TC_EGRESS;
}

static const char *hook_name(uint8_t hook)
{
	return hook == HOOK_INGRESS ? "ingress" : "egress";
}

static int op_attach(struct cursor *in, struct buf *out)
{
	char name[NAME_MAX + 1];
	uint32_t ifindex = cur_u32(in);
	struct bpf_program *prog;
	struct attachment *a;
	int err;

	cur_str(in, name, sizeof(name));
	uint8_t hook = cur_u8(in);
	if (!cur_ok(in) || hook > HOOK_EGRESS || ifindex == 0 || ifindex > INT_MAX)
		return malformed(out, "ATTACH");
	prog = find_program(name);
	if (!prog)
		return fail(out, "no loaded program named %s", name);

	LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = ifindex, .attach_point = tc_point(hook));
	err = bpf_tc_hook_create(&h);
	if (err && err != -EEXIST) /* EEXIST: clsact is there already, ours or not */
		return fail(out, "%s: clsact on ifindex %u: %s", name, ifindex, strerror(-err));
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = TC_HANDLE, .priority = TC_PRIORITY,
		    .prog_fd = bpf_program__fd(prog), .flags = BPF_TC_F_REPLACE);
	err = bpf_tc_attach(&h, &o);
	if (err)
		return fail(out, "%s at ifindex %u %s: %s", name, ifindex, hook_name(hook), strerror(-err));

	a = find_attachment(ifindex, hook);
	if (!a) {
		attachments = grow_array(attachments, ++n_attachments, sizeof(*attachments));
		a = &attachments[n_attachments - 1];
	}
	*a = (struct attachment){ .ifindex = ifindex, .hook = hook, .prog_id = o.prog_id };
	snprintf(a->prog, sizeof(a->prog), "%s", name);
	buf_u32(out, o.prog_id);
	return ST_OK;
}

static int op_detach(struct cursor *in, struct buf *out)
{
	uint32_t ifindex = cur_u32(in);
	uint8_t hook = cur_u8(in);
	struct attachment *a;
	int err;

	if (!cur_ok(in) || hook > HOOK_EGRESS || ifindex == 0 || ifindex > INT_MAX)
		return malformed(out, "DETACH");
	LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = ifindex, .attach_point = tc_point(hook));
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = TC_HANDLE, .priority = TC_PRIORITY);
	err = bpf_tc_detach(&h, &o);
	/* The veth may be gone (ENODEV), or have no clsact (EINVAL) or no filter
	 * of ours (ENOENT): either way nothing of ours is attached there. */
	if (err && err != -ENODEV && err != -EINVAL && err != -ENOENT)
		return fail(out, "ifindex %u %s: %s", ifindex, hook_name(hook), strerror(-err));
	a = find_attachment(ifindex, hook);
	if (a)
		*a = attachments[--n_attachments];
	buf_u8(out, err == 0);
	return ST_OK;
}

/* ---- XDP_ATTACH / XDP_DETACH */

enum { XDP_MODE_AUTO = 0, XDP_MODE_NATIVE = 1, XDP_MODE_GENERIC = 2 };

/* The XDP program attached to ifindex (id 0: none) and its mode's flag. */
static int xdp_current(uint32_t ifindex, uint32_t *id, uint32_t *mode_flag)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	int err = bpf_xdp_query(ifindex, 0, &q);

	if (err)
		return err;
	*id = q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id;
	*mode_flag = q.drv_prog_id ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
	return 0;
}

/* An fd of program `id` if it is named `name` (the kernel keeps 15
 * characters of a name), else -1. */
static int prog_fd_if_named(uint32_t id, const char *name)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);

	if (fd < 0)
		return -1;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || strncmp(info.name, name, sizeof(info.name) - 1) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static uint8_t mode_of_flag(uint32_t flag)
{
	return flag == XDP_FLAGS_DRV_MODE ? XDP_MODE_NATIVE : XDP_MODE_GENERIC;
}

static int op_xdp_attach(struct cursor *in, struct buf *out)
{
	char name[NAME_MAX + 1];
	uint32_t ifindex = cur_u32(in), id = 0, flag = 0;
	struct bpf_program *prog;
	int err, old_fd = -1;

	cur_str(in, name, sizeof(name));
	uint8_t mode = cur_u8(in);
	if (!cur_ok(in) || mode > XDP_MODE_GENERIC || ifindex == 0 || ifindex > INT_MAX)
		return malformed(out, "XDP_ATTACH");
	prog = find_program(name);
	if (!prog)
		return fail(out, "no loaded program named %s", name);
	if (bpf_program__type(prog) != BPF_PROG_TYPE_XDP)
		return fail(out, "%s is not an XDP program", name);
	err = xdp_current(ifindex, &id, &flag);
	if (err)
		return fail(out, "%s: XDP of ifindex %u: %s", name, ifindex, strerror(-err));
	if (id) {
		old_fd = prog_fd_if_named(id, name);
		if (old_fd < 0)
			return fail(out, "%s: ifindex %u has XDP program %u, not ours: not replacing it", name, ifindex, id);
	}
	if (old_fd >= 0 && (mode == XDP_MODE_AUTO || mode == mode_of_flag(flag))) {
		/* Ours, from an earlier loader or this one: replaced in place. */
		LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = old_fd);
		err = bpf_xdp_attach(ifindex, bpf_program__fd(prog), flag | XDP_FLAGS_REPLACE, &o);
		close(old_fd);
		if (err)
			return fail(out, "%s at ifindex %u: replace XDP program %u: %s", name, ifindex, id, strerror(-err));
	} else {
		if (old_fd >= 0) { /* ours, in the other mode: the two cannot coexist */
			LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = old_fd);
			err = bpf_xdp_detach(ifindex, flag | XDP_FLAGS_REPLACE, &o);
			close(old_fd);
			if (err)
				return fail(out, "%s at ifindex %u: detach XDP program %u: %s", name, ifindex, id, strerror(-err));
		}
		err = -EOPNOTSUPP;
		flag = XDP_FLAGS_DRV_MODE;
		if (mode != XDP_MODE_GENERIC)
			err = bpf_xdp_attach(ifindex, bpf_program__fd(prog), XDP_FLAGS_UPDATE_IF_NOEXIST | flag, NULL);
		if (err && mode != XDP_MODE_NATIVE) {
			int native = err;

			flag = XDP_FLAGS_SKB_MODE;
			err = bpf_xdp_attach(ifindex, bpf_program__fd(prog), XDP_FLAGS_UPDATE_IF_NOEXIST | flag, NULL);
			if (err && mode == XDP_MODE_AUTO)
				return fail(out, "%s at ifindex %u: native XDP: %s; generic XDP: %s", name, ifindex,
					    strerror(-native), strerror(-err));
		}
		if (err)
			return fail(out, "%s at ifindex %u (%s XDP): %s", name, ifindex,
				    flag == XDP_FLAGS_DRV_MODE ? "native" : "generic", strerror(-err));
	}
	buf_u32(out, prog_id(prog));
	buf_u8(out, mode_of_flag(flag));
	return ST_OK;
}

static int op_xdp_detach(struct cursor *in, struct buf *out)
{
	char name[NAME_MAX + 1];
	uint32_t ifindex = cur_u32(in), id = 0, flag = 0;
	int err, fd;

	cur_str(in, name, sizeof(name));
	if (!cur_ok(in) || !name[0] || ifindex == 0 || ifindex > INT_MAX)
		return malformed(out, "XDP_DETACH");
	err = xdp_current(ifindex, &id, &flag);
	if (err == -ENODEV || (!err && !id)) {
		buf_u8(out, 0);
		return ST_OK;
	}
	if (err)
		return fail(out, "XDP of ifindex %u: %s", ifindex, strerror(-err));
	fd = prog_fd_if_named(id, name);
	if (fd < 0) { /* another's program: left alone */
		buf_u8(out, 0);
		return ST_OK;
	}
	LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = fd);
	err = bpf_xdp_detach(ifindex, flag | XDP_FLAGS_REPLACE, &o);
	close(fd);
	/* Gone meanwhile (the device, or the program replaced): nothing of ours there. */
	if (err && err != -ENODEV && err != -EEXIST && err != -ENOENT)
		return fail(out, "%s at ifindex %u: detach XDP program %u: %s", name, ifindex, id, strerror(-err));
	buf_u8(out, err == 0);
	return ST_OK;
}

/* ---- UPDATE / DELETE / DUMP */

static bool unsupported(int err)
{
	return err == -ENOTSUPP || err == -EOPNOTSUPP;
}

/* The batch calls report in *count how many elements they processed before
 * the failing one, except when they fail before touching any (bad fd, no
 * permission), where *count is left as passed. */
static uint32_t batch_progress(int err, uint32_t passed, uint32_t reported)
{
	return err && reported == passed ? 0 : reported;
}

/* Applies entries in order, stopping at the first failure; *done = entries
 * applied (the index of the failed one). */
static int apply_update(int fd, const uint8_t *keys, const uint8_t *values, uint32_t ks, uint32_t vs,
			uint32_t count, uint32_t *done)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o, .elem_flags = BPF_ANY);
	uint32_t n = count;
	int err = bpf_map_update_batch(fd, keys, values, &n, &o);

	*done = batch_progress(err, count, n);
	if (!unsupported(err))
		return err;
	for (; *done < count; (*done)++) {
		err = bpf_map_update_elem(fd, keys + (size_t)*done * ks, values + (size_t)*done * vs, BPF_ANY);
		if (err)
			return err;
	}
	return 0;
}

/* Deletes keys in order; an absent key counts as done (a retried reconcile
 * deletes again). Stops at any other failure, *done = the failed key's index. */
static int apply_delete(int fd, const uint8_t *keys, uint32_t ks, uint32_t count, uint32_t *done,
			uint32_t *deleted)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o);
	bool batch = true;

	*done = *deleted = 0;
	while (*done < count) {
		const uint8_t *k = keys + (size_t)*done * ks;
		uint32_t n = 1; /* keys this step deleted */
		int err;

		if (batch) {
			n = count - *done;
			err = bpf_map_delete_batch(fd, k, &n, &o);
			n = batch_progress(err, count - *done, n);
			if (unsupported(err)) { /* one by one from here on */
				batch = false;
				continue;
			}
		} else {
			err = bpf_map_delete_elem(fd, k);
			if (err)
				n = 0;
		}
		*done += n;
		*deleted += n;
		if (err == -ENOENT)
			(*done)++;
		else if (err)
			return err;
	}
	return 0;
}

static int op_update(struct cursor *in, struct buf *out)
{
	char name[NAME_MAX + 1];
	uint8_t *keys = NULL, *values = NULL;
	struct bpf_map *map;
	int status = ST_OK, err;

	cur_str(in, name, sizeof(name));
	uint32_t count = cur_u32(in), ks = cur_u32(in), vs = cur_u32(in), done;
	const uint8_t *entries = cur_array(in, count, (uint64_t)ks + vs);
	if (!cur_ok(in))
		return malformed(out, "UPDATE");
	map = find_map(name);
	if (!map)
		return fail(out, "no loaded map named %s", name);
	if (count == 0) {
		buf_u32(out, 0);
		return ST_OK;
	}
	if (ks != bpf_map__key_size(map) || vs != value_bytes(map))
		return fail(out, "%s: entries of %u+%u bytes, the map's are %u+%u", name, ks, vs,
			    bpf_map__key_size(map), value_bytes(map));
	/* The wire interleaves keys and values; the syscalls want two arrays. */
	keys = malloc((size_t)count * ks);
	values = malloc((size_t)count * vs);
	if (!keys || !values) {
		status = fail(out, "%s: out of memory for %u entries", name, count);
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		memcpy(keys + i * ks, entries + i * (ks + vs), ks);
		memcpy(values + i * vs, entries + i * (ks + vs) + ks, vs);
	}
	err = apply_update(bpf_map__fd(map), keys, values, ks, vs, count, &done);
	if (err)
		status = fail_batch(out, done, -err, done,
				    "%s: entry %u failed: %s (applied before it: %u; not attempted after it: %u)",
				    name, done, strerror(-err), done, count - done - 1);
	else
		buf_u32(out, count);
out:
	free(keys);
	free(values);
	return status;
}

static int op_delete(struct cursor *in, struct buf *out)
{
	char name[NAME_MAX + 1];
	struct bpf_map *map;
	int err;

	cur_str(in, name, sizeof(name));
	uint32_t count = cur_u32(in), ks = cur_u32(in), done, deleted;
	const uint8_t *keys = cur_array(in, count, ks);
	if (!cur_ok(in))
		return malformed(out, "DELETE");
	map = find_map(name);
	if (!map)
		return fail(out, "no loaded map named %s", name);
	if (count == 0) {
		buf_u32(out, 0);
		return ST_OK;
	}
	if (ks != bpf_map__key_size(map))
		return fail(out, "%s: keys of %u bytes, the map's are %u", name, ks, bpf_map__key_size(map));
	err = apply_delete(bpf_map__fd(map), keys, ks, count, &done, &deleted);
	if (err)
		return fail_batch(out, done, -err, deleted,
				  "%s: key %u failed: %s (before it: %u deleted, %u absent; not attempted after it: %u)",
				  name, done, strerror(-err), deleted, done - deleted, count - done - 1);
	buf_u32(out, deleted);
	return ST_OK;
}

static void put_entries(struct buf *out, const uint8_t *keys, const uint8_t *values, uint32_t ks, uint32_t vs,
			uint32_t n)
{
	for (size_t i = 0; i < n; i++) {
		buf_put(out, keys + i * ks, ks);
		buf_put(out, values + i * vs, vs);
	}
}

/* Appends every entry to out through the kernel's batch lookup, a chunk at a
 * time; *count = entries appended. */
static int dump_batch(int fd, uint32_t ks, uint32_t vs, struct buf *out, uint32_t *count)
{
	LIBBPF_OPTS(bpf_map_batch_opts, o);
	uint8_t *keys = malloc((size_t)DUMP_CHUNK * ks), *values = malloc((size_t)DUMP_CHUNK * vs);
	/* Opaque position: a bucket number for hashes, a key for arrays. */
	uint8_t *token = malloc(ks + sizeof(uint64_t));
	int err = keys && values && token ? 0 : -ENOMEM;

	for (bool first = true; !err; first = false) {
		uint32_t n = DUMP_CHUNK;
		err = bpf_map_lookup_batch(fd, first ? NULL : token, token, keys, values, &n, &o);
		if (err && err != -ENOENT) /* ENOENT: this chunk is the last */
			break;
		put_entries(out, keys, values, ks, vs, n);
		*count += n;
	}
	free(keys);
	free(values);
	free(token);
	return err == -ENOENT ? 0 : err;
}

/* The same, key by key, for maps without batch lookup (LPM tries). */
static int dump_each(int fd, uint32_t ks, uint32_t vs, struct buf *out, uint32_t *count)
{
	uint8_t *prev = malloc(ks), *key = malloc(ks), *value = malloc(vs), *swap;
	int err = prev && key && value ? 0 : -ENOMEM;

	for (bool first = true; !err; first = false) {
		err = bpf_map_get_next_key(fd, first ? NULL : prev, key);
		if (err)
			break;
		err = bpf_map_lookup_elem(fd, key, value);
		if (!err) {
			put_entries(out, key, value, ks, vs, 1);
			(*count)++;
		} else if (err == -ENOENT) { /* deleted since get_next_key */
			err = 0;
		}
		swap = prev;
		prev = key;
		key = swap;
	}
	free(prev);
	free(key);
	free(value);
	return err == -ENOENT ? 0 : err;
}

static int op_dump(struct cursor *in, struct buf *out)
{
	char name[NAME_MAX + 1];
	struct bpf_map *map;
	uint32_t count = 0;
	int err;

	cur_str(in, name, sizeof(name));
	if (!cur_ok(in))
		return malformed(out, "DUMP");
	map = find_map(name);
	if (!map)
		return fail(out, "no loaded map named %s", name);
	uint32_t ks = bpf_map__key_size(map), vs = value_bytes(map);
	buf_u32(out, 0);
	buf_u32(out, ks);
	buf_u32(out, vs);
	err = dump_batch(bpf_map__fd(map), ks, vs, out, &count);
	if (unsupported(err))
		err = dump_each(bpf_map__fd(map), ks, vs, out, &count);
	if (err)
		return fail(out, "%s: %s", name, strerror(-err));
	put_le32(out->data, count);
	return ST_OK;
}

static int op_dump_pinned(struct cursor *in, struct buf *out)
{
	char path[PATH_MAX];
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info), count = 0;
	int fd, err;

	cur_str(in, path, sizeof(path));
	if (!cur_ok(in))
		return malformed(out, "DUMP_PINNED");
	fd = bpf_obj_get(path);
	if (fd < 0)
		return fail(out, "no pinned map at %s: %s", path, strerror(errno));
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err) {
		close(fd);
		return fail(out, "%s: %s", path, strerror(-err));
	}
	bool percpu = info.type == BPF_MAP_TYPE_PERCPU_HASH || info.type == BPF_MAP_TYPE_PERCPU_ARRAY ||
		      info.type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
	uint32_t ks = info.key_size, vs = percpu ? ((info.value_size + 7) & ~7u) * possible_cpus : info.value_size;
	buf_u32(out, 0);
	buf_u32(out, ks);
	buf_u32(out, vs);
	if (info.type == BPF_MAP_TYPE_RINGBUF) { /* no entries to read */
		close(fd);
		return ST_OK;
	}
	err = dump_batch(fd, ks, vs, out, &count);
	if (unsupported(err))
		err = dump_each(fd, ks, vs, out, &count);
	close(fd);
	if (err)
		return fail(out, "%s: %s", path, strerror(-err));
	put_le32(out->data, count);
	return ST_OK;
}

/* ---- TEST_RUN / LAYOUT / STATUS */

static int op_test_run(struct cursor *in, struct buf *out)
{
	char name[NAME_MAX + 1];
	struct __sk_buff skb = {};
	struct bpf_program *prog;
	uint32_t data_len, ctx_len;
	uint8_t *data_out;
	int err;

	cur_str(in, name, sizeof(name));
	uint32_t repeat = cur_u32(in);
	const void *data = cur_bytes(in, &data_len);
	const void *ctx = cur_bytes(in, &ctx_len);
	uint32_t ifindex = cur_u32(in);
	if (!cur_ok(in) || ctx_len > sizeof(skb))
		return malformed(out, "TEST_RUN");
	prog = find_program(name);
	if (!prog)
		return fail(out, "no loaded program named %s", name);
	memcpy(&skb, ctx, ctx_len);
	if (ifindex)
		skb.ifindex = ifindex;
	data_out = malloc(data_len + TEST_RUN_SLACK);
	if (!data_out)
		return fail(out, "%s: out of memory", name);

	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = data, .data_size_in = data_len, .data_out = data_out,
		    .data_size_out = data_len + TEST_RUN_SLACK, .repeat = repeat);
	if (ctx_len || ifindex) {
		o.ctx_in = &skb;
		o.ctx_size_in = sizeof(skb);
	}
	err = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);
	if (err) {
		free(data_out);
		return fail(out, "%s: %s", name, strerror(-err));
	}
	buf_u32(out, o.retval);
	buf_u32(out, o.duration);
	buf_bytes(out, data_out, o.data_size_out);
	free(data_out);
	return ST_OK;
}

static void put_layout(struct buf *out, const char *name)
{
	const struct btf *btf = NULL;
	__s32 id = -1;

	for (size_t i = 0; i < n_objects && id < 0; i++) {
		btf = bpf_object__btf(objects[i].obj);
		id = btf ? btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT) : -1;
	}
	buf_str(out, name);
	buf_u8(out, id >= 0);
	if (id < 0)
		return;
	const struct btf_type *t = btf__type_by_id(btf, id);
	const struct btf_member *m = btf_members(t);
	buf_u32(out, t->size);
	buf_u16(out, btf_vlen(t));
	for (int i = 0; i < btf_vlen(t); i++) {
		buf_str(out, btf__name_by_offset(btf, m[i].name_off));
		buf_u32(out, btf_member_bit_offset(t, i) / 8);
		buf_u32(out, btf__resolve_size(btf, m[i].type));
	}
}

static int op_layout(struct cursor *in, struct buf *out)
{
	char name[NAME_MAX + 1];
	uint16_t n = cur_u16(in);

	buf_u16(out, n);
	for (uint16_t i = 0; i < n && !in->bad; i++) {
		cur_str(in, name, sizeof(name));
		put_layout(out, name);
	}
	return cur_ok(in) ? ST_OK : malformed(out, "LAYOUT");
}

static int op_status(struct cursor *in, struct buf *out)
{
	if (!cur_ok(in))
		return malformed(out, "STATUS");
	buf_u16(out, PROTOCOL_VERSION);
	buf_u32(out, possible_cpus);
	buf_u16(out, n_objects);
	for (size_t i = 0; i < n_objects; i++)
		put_object(out, &objects[i]);
	buf_u16(out, n_attachments);
	for (size_t i = 0; i < n_attachments; i++) {
		buf_u32(out, attachments[i].ifindex);
		buf_u8(out, attachments[i].hook);
		buf_str(out, attachments[i].prog);
		buf_u32(out, attachments[i].prog_id);
	}
	return ST_OK;
}

/* ---- framing */

static int (*const handlers[])(struct cursor *, struct buf *) = {
	[OP_LOAD] = op_load,	     [OP_ATTACH] = op_attach, [OP_DETACH] = op_detach,
	[OP_UPDATE] = op_update,     [OP_DELETE] = op_delete, [OP_DUMP] = op_dump,
	[OP_TEST_RUN] = op_test_run, [OP_LAYOUT] = op_layout, [OP_STATUS] = op_status,
	[OP_DUMP_PINNED] = op_dump_pinned,
	[OP_XDP_ATTACH] = op_xdp_attach, [OP_XDP_DETACH] = op_xdp_detach,
};

/* 1: read n bytes; 0: input ended before the first; -1: error or ended mid-way. */
static int read_full(void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(STDIN_FILENO, (uint8_t *)p + got, n - got);
		if (r > 0)
			got += r;
		else if (r < 0 && errno == EINTR)
			continue;
		else
			return got == 0 && r == 0 ? 0 : -1;
	}
	return 1;
}

static int discard(size_t n)
{
	uint8_t scratch[65536];

	while (n) {
		size_t step = n < sizeof(scratch) ? n : sizeof(scratch);
		if (read_full(scratch, step) != 1)
			return -1;
		n -= step;
	}
	return 0;
}

static int write_full(const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(STDOUT_FILENO, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p = (const uint8_t *)p + w;
		n -= w;
	}
	return 0;
}

static int respond(uint32_t id, uint8_t status, const struct buf *payload)
{
	uint8_t head[9];

	put_le32(head, 5 + payload->len);
	put_le32(head + 4, id);
	head[8] = status;
	return write_full(head, sizeof(head)) || write_full(payload->data, payload->len) ? -1 : 0;
}

/* Reads one request (its length already read) and answers it; -1 when the
 * input ended mid-frame or the output is gone. */
static int serve(uint32_t len, struct buf *out)
{
	uint8_t head[5], *body;
	int status;

	out->len = 0;
	log_len = log_dropped = 0;
	if (len < sizeof(head)) {
		if (discard(len))
			return -1;
		fail(out, "frame of %u bytes is shorter than its header", len);
		return respond(0, ST_ERROR, out);
	}
	if (read_full(head, sizeof(head)) != 1)
		return -1;
	uint32_t id = get_le32(head);
	uint8_t op = head[4];
	if (len > MAX_FRAME) {
		if (discard(len - sizeof(head)))
			return -1;
		fail(out, "frame of %u bytes exceeds the limit of %u", len, MAX_FRAME);
		return respond(id, ST_ERROR, out);
	}
	body = malloc(len - sizeof(head) + 1);
	if (!body || read_full(body, len - sizeof(head)) != 1) {
		free(body);
		return -1;
	}
	struct cursor in = { .p = body, .left = len - sizeof(head) };
	if (op < sizeof(handlers) / sizeof(handlers[0]) && handlers[op])
		status = handlers[op](&in, out);
	else
		status = fail(out, "unknown op %u", op);
	free(body);
	return respond(id, status, out);
}

int main(int argc, char **argv)
{
	struct buf out = {};
	uint8_t len[4];
	int r, rc = 0;

	verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
	signal(SIGPIPE, SIG_IGN); /* a gone agent shows as a failed write */
	/* A stop signal to the agent's process group (a supervisor's, a Ctrl-C)
	 * must not end the loader before the agent has used it to stop: it ends
	 * the DNS proxy's lease through us, for one. We exit when the agent
	 * closes stdin, or dies (which closes it too). */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	libbpf_set_print(print_libbpf);
	possible_cpus = libbpf_num_possible_cpus();
	if (possible_cpus < 0) {
		fprintf(stderr, "palisade-loader: cannot count possible CPUs: %s\n", strerror(-possible_cpus));
		return 1;
	}
	while ((r = read_full(len, sizeof(len))) == 1)
		if (serve(get_le32(len), &out)) {
			fprintf(stderr, "palisade-loader: input ended mid-frame or output closed\n");
			rc = 1;
			break;
		}
	if (r < 0) {
		fprintf(stderr, "palisade-loader: input ended mid-frame\n");
		rc = 1;
	}
	/* Closing the objects unpins and detaches nothing: the kernel keeps the
	 * pinned maps and programs, and the tc filters hold their programs. */
	for (size_t i = 0; i < n_objects; i++)
		bpf_object__close(objects[i].obj);
	free(objects);
	free(attachments);
	free(out.data);
	return rc;
}
