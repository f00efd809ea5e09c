/*
 * The prefilter benchmark's flood (e2e/bench/prefilter.ts): runs
 * prefilter-gen.bpf.o's generator with BPF_PROG_TEST_RUN in live-frames
 * mode for SECONDS, each run sending copies of one 60-byte UDP frame from
 * SRC to DST:DPORT (a new source port each) out of IFNAME, a veth whose
 * peer receives them as XDP frames; prints "sent N in S s" (N: frames the
 * generator ran on; the device may still have refused some). Built by the
 * benchmark into its run directory; run in the sender's namespace.
 *
 *   prefilter-flood GEN_OBJECT IFNAME DST_MAC SRC_IPV4 DST_IPV4 DPORT SECONDS
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define FRAME 60 /* Ethernet + IPv4 + UDP + 18 bytes: the shortest Ethernet frame */
#define RUN 200000 /* frames per test_run call */

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static uint16_t checksum(const uint8_t *p, int len)
{
	uint32_t sum = 0;

	for (int i = 0; i < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

int main(int argc, char **argv)
{
	uint8_t frame[FRAME] = { 0 }, *ip = frame + 14, *udp = ip + 20;
	struct ifreq ifr = { 0 };
	unsigned int mac[6];
	uint32_t src, dst, zero = 0, ifindex;
	unsigned long long sent = 0;
	struct bpf_object *obj;
	int sock, prog, err;

	if (argc != 8 || sscanf(argv[3], "%x:%x:%x:%x:%x:%x", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5]) != 6 ||
	    inet_pton(AF_INET, argv[4], &src) != 1 || inet_pton(AF_INET, argv[5], &dst) != 1) {
		fprintf(stderr, "usage: %s GEN_OBJECT IFNAME DST_MAC SRC_IPV4 DST_IPV4 DPORT SECONDS\n", argv[0]);
		return 2;
	}
	uint16_t dport = (uint16_t)atoi(argv[6]);
	double seconds = atof(argv[7]);
	ifindex = if_nametoindex(argv[2]);
	sock = socket(AF_INET, SOCK_DGRAM, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", argv[2]);
	if (!ifindex || sock < 0 || ioctl(sock, SIOCGIFHWADDR, &ifr)) {
		fprintf(stderr, "%s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "load %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	prog = bpf_program__fd(bpf_object__find_program_by_name(obj, "pal_bench_gen"));

	for (int b = 0; b < 6; b++)
		frame[b] = (uint8_t)mac[b];
	memcpy(frame + 6, ifr.ifr_hwaddr.sa_data, 6);
	frame[12] = 0x08;
	ip[0] = 0x45;
	ip[3] = FRAME - 14;
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	uint16_t c = checksum(ip, 20);
	ip[10] = c >> 8;
	ip[11] = c & 0xff;
	udp[2] = dport >> 8;
	udp[3] = dport & 0xff;
	udp[5] = FRAME - 34;
	/* prefilter-gen.bpf.c's struct gen_config: the device, then the headers it writes into every frame. */
	struct {
		uint32_t ifindex;
		uint8_t hdr[42];
		uint8_t pad[2];
	} config = { .ifindex = ifindex };
	memcpy(config.hdr, frame, sizeof(config.hdr));
	if (bpf_map_update_elem(bpf_map__fd(bpf_object__find_map_by_name(obj, "gen_config")), &zero, &config, BPF_ANY)) {
		fprintf(stderr, "gen_config: %s\n", strerror(errno));
		return 1;
	}

	double start = now(), end = start + seconds;
	while (now() < end) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = FRAME, .repeat = RUN,
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);
		err = bpf_prog_test_run_opts(prog, &o);
		if (err) {
			fprintf(stderr, "test_run: %s\n", strerror(-err));
			return 1;
		}
		sent += RUN;
	}
	printf("sent %llu in %.6f s\n", sent, now() - start);
	bpf_object__close(obj);
	return 0;
}
