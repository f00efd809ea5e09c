/*
 * palisade-prober: checks many connections in parallel, each from a given
 * network namespace, in one process.
 *
 * Usage: palisade-prober [--timeout-ms N] < probes
 *
 * Input, one probe per line until EOF (blank lines are ignored):
 *     ID NETNS_PATH PROTO DST_IPV4 PORT
 * PROTO is tcp, udp or sctp; NETNS_PATH names a network namespace file, e.g.
 * /var/run/netns/pod-a.
 *
 * Output, one line per probe in input order, once every probe has finished:
 *     ID ok
 *     ID fail REASON          REASON is "timeout" or an errno name
 *                             (ECONNREFUSED, EHOSTUNREACH, ...)
 *     ID skip sctp-unsupported
 *
 * A probe succeeds when
 *     tcp, sctp  a non-blocking connect() completes (SO_ERROR 0); the
 *                connection is closed right away
 *     udp        a datagram with the probe's payload ("palisade-probe ID
 *                TOKEN", TOKEN random) comes back; the payload is resent
 *                every 200 ms, as datagrams may be lost. An ICMP error
 *                reported on the connected socket fails the probe.
 * All probes share one deadline, --timeout-ms (default 1000) after probing
 * starts; probes still pending then fail with "timeout".
 *
 * Exit status: 0 when the input was valid, whatever the probe results;
 * 2 for bad usage, a malformed line, or a netns that cannot be opened or
 * entered (the message names the line); 1 for other failures, e.g. running
 * out of file descriptors.
 *
 * How: each socket is created inside its probe's netns (setns(CLONE_NEWNET);
 * a socket stays in the netns it was created in), the thread then returns to
 * its original netns, and all probes run concurrently: non-blocking sockets,
 * one poll() loop. Input is read and every socket created before the first
 * probe starts, so bad input exits 2 before any traffic is sent.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROG                "palisade-prober"
#define DEFAULT_TIMEOUT_MS  1000
#define UDP_RESEND_MS       200
#define MAX_DATAGRAM        65536

enum proto { TCP, UDP, SCTP };

enum outcome { PENDING, OK, FAIL, SKIP };

struct probe {
	char *id;
	enum proto proto;
	struct sockaddr_in dst;
	char *payload;          /* udp only */
	size_t payload_len;
	enum outcome outcome;
	const char *reason;     /* FAIL and SKIP: one word */
};

/*
 * All probes. pfds[i] belongs to probes[i]: its fd is the probe's socket,
 * set to -1 (which poll() ignores) once the probe has finished.
 */
static struct probe *probes;
static struct pollfd *pfds;
static size_t probe_count, probe_capacity, pending_probes;

/* Network namespaces opened so far, by path. */
struct netns {
	char *path;
	int fd;
};
static struct netns *netns_cache;
static size_t netns_count, netns_capacity;

/* The netns the thread was started in; it returns there after each socket. */
static int original_netns = -1;

__attribute__((format(printf, 2, 3)))
static noreturn void die(int status, const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void *xreallocarray(void *array, size_t count, size_t element_size)
{
	array = reallocarray(array, count, element_size);
	if (array == NULL)
		die(1, "out of memory");
	return array;
}

static size_t next_capacity(size_t capacity)
{
	return capacity ? 2 * capacity : 64;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *errno_name(int err)
{
	const char *name = strerrorname_np(err);

	return name ? name : "EUNKNOWN";
}

/* Each probe costs a descriptor; allow as many as the hard limit. */
static void raise_fd_limit(void)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
		lim.rlim_cur = lim.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
			fprintf(stderr, PROG ": raising the open file limit: %s\n", strerror(errno));
	}
}

static int parse_timeout(int argc, char **argv)
{
	char *end;
	long ms;

	if (argc == 1)
		return DEFAULT_TIMEOUT_MS;
	if (argc != 3 || strcmp(argv[1], "--timeout-ms") != 0)
		die(2, "usage: " PROG " [--timeout-ms N] < probes");
	errno = 0;
	ms = strtol(argv[2], &end, 10);
	if (errno != 0 || end == argv[2] || *end != '\0' || ms < 1 || ms > 3600000)
		die(2, "invalid --timeout-ms '%s' (expected 1-3600000)", argv[2]);
	return (int)ms;
}

/* Returns the descriptor of the netns at path, opening it the first time. */
static int netns_fd(const char *path, size_t line)
{
	int fd;

	for (size_t i = 0; i < netns_count; i++)
		if (strcmp(netns_cache[i].path, path) == 0)
			return netns_cache[i].fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(2, "line %zu: cannot open netns %s: %s", line, path, strerror(errno));
	if (netns_count == netns_capacity) {
		netns_capacity = next_capacity(netns_capacity);
		netns_cache = xreallocarray(netns_cache, netns_capacity, sizeof *netns_cache);
	}
	netns_cache[netns_count].path = strdup(path);
	if (netns_cache[netns_count].path == NULL)
		die(1, "out of memory");
	netns_cache[netns_count++].fd = fd;
	return fd;
}

static void close_netns_cache(void)
{
	for (size_t i = 0; i < netns_count; i++) {
		close(netns_cache[i].fd);
		free(netns_cache[i].path);
	}
	free(netns_cache);
	netns_cache = NULL;
	netns_count = netns_capacity = 0;
}

static void make_payload(struct probe *p)
{
	uint64_t token;
	int len;

	if (getrandom(&token, sizeof token, 0) != (ssize_t)sizeof token)
		die(1, "getrandom: %s", strerror(errno));
	len = asprintf(&p->payload, "palisade-probe %s %016llx", p->id, (unsigned long long)token);
	if (len < 0)
		die(1, "out of memory");
	p->payload_len = (size_t)len;
}

/*
 * Creates the probe's non-blocking socket in the thread's current netns.
 * Returns the socket, or -1 when the probe is sctp and the kernel does not
 * support SCTP (the probe is then marked SKIP).
 */
static int create_socket(struct probe *p, size_t line)
{
	static const int type[] = { [TCP] = SOCK_STREAM, [UDP] = SOCK_DGRAM, [SCTP] = SOCK_STREAM };
	static const int protocol[] = { [TCP] = IPPROTO_TCP, [UDP] = IPPROTO_UDP, [SCTP] = IPPROTO_SCTP };
	int fd = socket(AF_INET, type[p->proto] | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol[p->proto]);

	if (fd >= 0)
		return fd;
	if (p->proto == SCTP && (errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT)) {
		p->outcome = SKIP;
		p->reason = "sctp-unsupported";
		return -1;
	}
	die(1, "line %zu: cannot create socket: %s", line, strerror(errno));
}

/* Creates the probe's socket inside the netns at path; see create_socket. */
static int create_socket_in(const char *path, struct probe *p, size_t line)
{
	int fd;

	if (setns(netns_fd(path, line), CLONE_NEWNET) < 0)
		die(2, "line %zu: cannot enter netns %s: %s", line, path, strerror(errno));
	fd = create_socket(p, line);
	if (setns(original_netns, CLONE_NEWNET) < 0)
		die(1, "cannot return to the original netns: %s", strerror(errno));
	return fd;
}

static int parse_proto(const char *s, enum proto *proto)
{
	if (strcmp(s, "tcp") == 0)
		*proto = TCP;
	else if (strcmp(s, "udp") == 0)
		*proto = UDP;
	else if (strcmp(s, "sctp") == 0)
		*proto = SCTP;
	else
		return -1;
	return 0;
}

static int parse_port(const char *s, in_port_t *port)
{
	char *end;
	long value;

	errno = 0;
	value = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || value < 1 || value > 65535)
		return -1;
	*port = htons((uint16_t)value);
	return 0;
}

/* Parses one input line and creates its socket; blank lines are skipped. */
static void add_probe(char *text, size_t line)
{
	enum { ID, NETNS, PROTO, DST, PORT, FIELDS };
	char *field[FIELDS + 1], *save = NULL;
	size_t n = 0;
	struct probe p = { .outcome = PENDING };
	int fd;

	for (char *tok = strtok_r(text, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == FIELDS)
			die(2, "line %zu: too many fields (expected ID NETNS_PATH PROTO DST_IPV4 PORT)", line);
		field[n++] = tok;
	}
	if (n == 0)
		return;
	if (n < FIELDS)
		die(2, "line %zu: too few fields (expected ID NETNS_PATH PROTO DST_IPV4 PORT)", line);
	if (parse_proto(field[PROTO], &p.proto) < 0)
		die(2, "line %zu: invalid protocol '%s' (expected tcp, udp or sctp)", line, field[PROTO]);
	p.dst.sin_family = AF_INET;
	if (inet_pton(AF_INET, field[DST], &p.dst.sin_addr) != 1)
		die(2, "line %zu: invalid IPv4 address '%s'", line, field[DST]);
	if (parse_port(field[PORT], &p.dst.sin_port) < 0)
		die(2, "line %zu: invalid port '%s' (expected 1-65535)", line, field[PORT]);
	p.id = strdup(field[ID]);
	if (p.id == NULL)
		die(1, "out of memory");
	if (p.proto == UDP)
		make_payload(&p);

	fd = create_socket_in(field[NETNS], &p, line);

	if (probe_count == probe_capacity) {
		probe_capacity = next_capacity(probe_capacity);
		probes = xreallocarray(probes, probe_capacity, sizeof *probes);
		pfds = xreallocarray(pfds, probe_capacity, sizeof *pfds);
	}
	probes[probe_count] = p;
	pfds[probe_count++] = (struct pollfd){ .fd = fd, .events = p.proto == UDP ? POLLIN : POLLOUT };
	pending_probes += p.outcome == PENDING;
}

static void read_probes(void)
{
	char *text = NULL;
	size_t size = 0;

	for (size_t line = 1; getline(&text, &size, stdin) >= 0; line++)
		add_probe(text, line);
	if (ferror(stdin))
		die(1, "reading stdin: %s", strerror(errno));
	free(text);
}

/* Records a pending probe's result and closes its socket. */
static void finish(size_t i, enum outcome outcome, const char *reason)
{
	pending_probes--;
	probes[i].outcome = outcome;
	probes[i].reason = reason;
	close(pfds[i].fd);
	pfds[i].fd = -1;
}

/* Sends the udp payload; a transient failure waits for the next resend. */
static void send_payload(size_t i)
{
	if (send(pfds[i].fd, probes[i].payload, probes[i].payload_len, 0) < 0 &&
	    errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS && errno != EINTR)
		finish(i, FAIL, errno_name(errno));
}

/* Starts a probe: connects, and for udp sends the first datagram. */
static void start_probe(size_t i)
{
	if (connect(pfds[i].fd, (struct sockaddr *)&probes[i].dst, sizeof probes[i].dst) < 0) {
		if (errno != EINPROGRESS)
			finish(i, FAIL, errno_name(errno));
		return;
	}
	if (probes[i].proto == UDP)
		send_payload(i);
	else
		finish(i, OK, NULL); /* connected at once */
}

/* A tcp or sctp connect completed, one way or the other. */
static void check_connect(size_t i, short revents)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(pfds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == 0 && (revents & POLLOUT))
		finish(i, OK, NULL);
	else
		finish(i, FAIL, errno_name(err ? err : ECONNRESET));
}

/* Reads the datagrams waiting on a udp probe's socket. */
static void check_echo(size_t i)
{
	static char buf[MAX_DATAGRAM];

	for (;;) {
		ssize_t n = recv(pfds[i].fd, buf, sizeof buf, 0);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				finish(i, FAIL, errno_name(errno)); /* an ICMP error */
			return;
		}
		if ((size_t)n == probes[i].payload_len &&
		    memcmp(buf, probes[i].payload, (size_t)n) == 0) {
			finish(i, OK, NULL);
			return;
		}
		/* anything else is not our echo: keep waiting */
	}
}

static void resend_udp(void)
{
	for (size_t i = 0; i < probe_count; i++)
		if (probes[i].proto == UDP && probes[i].outcome == PENDING)
			send_payload(i);
}

/* Runs every pending probe to a result within timeout_ms. */
static void run_probes(int timeout_ms)
{
	int64_t start = now_ms();
	int64_t deadline = start + timeout_ms;
	int64_t next_resend = start + UDP_RESEND_MS;

	for (size_t i = 0; i < probe_count; i++)
		if (probes[i].outcome == PENDING)
			start_probe(i);

	while (pending_probes > 0) {
		int64_t now = now_ms();
		if (now >= deadline)
			break;
		if (now >= next_resend) {
			resend_udp();
			next_resend = now + UDP_RESEND_MS;
		}
		int64_t wake = next_resend < deadline ? next_resend : deadline;
		int ready = poll(pfds, probe_count, (int)(wake - now));
		if (ready < 0) {
			if (errno == EINTR)
				continue;
			die(1, "poll: %s", strerror(errno));
		}
		for (size_t i = 0; ready > 0 && i < probe_count; i++) {
			if (pfds[i].fd < 0 || pfds[i].revents == 0)
				continue;
			ready--;
			if (probes[i].proto == UDP)
				check_echo(i);
			else
				check_connect(i, pfds[i].revents);
		}
	}

	for (size_t i = 0; i < probe_count; i++)
		if (probes[i].outcome == PENDING)
			finish(i, FAIL, "timeout");
}

static void print_results(void)
{
	for (size_t i = 0; i < probe_count; i++) {
		const struct probe *p = &probes[i];
		if (p->outcome == OK)
			printf("%s ok\n", p->id);
		else
			printf("%s %s %s\n", p->id, p->outcome == SKIP ? "skip" : "fail", p->reason);
	}
	if (fflush(stdout) == EOF)
		die(1, "writing results: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	int timeout_ms = parse_timeout(argc, argv);

	raise_fd_limit();
	original_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (original_netns < 0)
		die(1, "cannot open /proc/self/ns/net: %s", strerror(errno));

	read_probes();
	close_netns_cache();
	run_probes(timeout_ms);
	print_results();
	return 0;
}
