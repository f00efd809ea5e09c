/* palisade-flow-reader: streams the records of a pinned BPF ring buffer
 * (the datapath's pal_flows, bpf/lib/flows.h) to stdout, for the node agent
 * that starts it (datapath/flow-reader.ts).
 *
 *   palisade-flow-reader PINNED_RING
 *
 * Output: each record as `u32 length | record`, little-endian, many records
 * to a write. A record's first 8 bytes, when it has them, are a
 * CLOCK_BOOTTIME time in nanoseconds: they are rewritten to Unix time
 * (CLOCK_REALTIME), which the agent can compare with its own clock.
 * Records are passed on whatever their length: the agent decodes them and
 * counts what it cannot.
 *
 * Backpressure is the kernel's: while the agent does not read, writes
 * block, the ring fills, and the programs count what they cannot write
 * (pal_flow_lost). The reader exits when its parent dies (PDEATHSIG), when
 * stdout is closed, and on SIGTERM or SIGINT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define OUT_BYTES (1u << 20)
#define POLL_MS 50

static uint8_t out[OUT_BYTES];
static size_t out_len;
static int64_t boot_to_unix_ns;
static volatile sig_atomic_t stopping;

static int64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int flush_out(void)
{
	size_t done = 0;

	while (done < out_len) {
		ssize_t n = write(STDOUT_FILENO, out + done, out_len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	out_len = 0;
	return 0;
}

static int on_record(void *ctx, void *data, size_t size)
{
	uint32_t len = (uint32_t)size;
	(void)ctx;

	if (size > OUT_BYTES - sizeof(len))
		return 0; /* cannot be a flow record: skipped (the agent never sees it) */
	if (out_len + sizeof(len) + size > OUT_BYTES && flush_out())
		return -EPIPE;
	memcpy(out + out_len, &len, sizeof(len));
	memcpy(out + out_len + sizeof(len), data, size);
	if (size >= sizeof(uint64_t)) {
		uint64_t t;

		memcpy(&t, out + out_len + sizeof(len), sizeof(t));
		t += (uint64_t)boot_to_unix_ns;
		memcpy(out + out_len + sizeof(len), &t, sizeof(t));
	}
	out_len += sizeof(len) + size;
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

int main(int argc, char **argv)
{
	struct ring_buffer *ring;
	int fd, err = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PINNED_RING\n", argv[0]);
		return 2;
	}
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	fd = bpf_obj_get(argv[1]);
	if (fd < 0) {
		fprintf(stderr, "palisade-flow-reader: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	ring = ring_buffer__new(fd, on_record, NULL, NULL);
	if (!ring) {
		fprintf(stderr, "palisade-flow-reader: %s is not a ring buffer: %s\n", argv[1], strerror(errno));
		return 1;
	}
	while (!stopping) {
		boot_to_unix_ns = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME);
		err = ring_buffer__poll(ring, POLL_MS);
		if (err == -EINTR) {
			err = 0;
			continue;
		}
		if (err < 0 || flush_out())
			break;
		err = 0;
	}
	ring_buffer__free(ring);
	if (err < 0 && err != -EPIPE) {
		fprintf(stderr, "palisade-flow-reader: %s\n", strerror(-err));
		return 1;
	}
	return 0;
}
