/*
 * palisade-podserver: the "container" of Palisade's end-to-end test pods.
 *
 * Usage: palisade-podserver PORT...
 *
 * Started inside a pod's network namespace (ip netns exec NS palisade-podserver
 * 80 81), it serves on 0.0.0.0 on every PORT:
 *   tcp   accepts connections and echoes what it receives until the peer closes
 *   udp   echoes every datagram back to its sender
 *   sctp  one-to-one style (SOCK_STREAM), served like tcp, if the kernel
 *         supports SCTP; otherwise it says so in one line on stderr and serves
 *         tcp and udp only
 * When every socket listens it prints "ready\n" on stdout and flushes it.
 * SIGTERM or SIGINT ends it with exit status 0.
 * Exit status 2: bad usage. Exit status 1: setup failed, e.g.
 *   "palisade-podserver: bind tcp port 80: Address already in use".
 *
 * One process, one thread, non-blocking sockets, one level-triggered epoll
 * loop. An echo connection reads again only once everything it read before
 * has been written back, so a peer that does not read its echo is slowed
 * down by TCP flow control instead of growing a buffer here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROG            "palisade-podserver"
#define ECHO_BUF_SIZE   16384
#define MAX_DATAGRAM    65536
#define EVENTS_PER_WAIT 256

/* What an epoll event points at. */
enum endpoint_kind { SIGNALS, STREAM_LISTENER, DATAGRAM_SOCKET, STREAM_CONNECTION };

struct endpoint {
	enum endpoint_kind kind;
	int fd;
};

/* An accepted tcp or sctp connection. */
struct connection {
	struct endpoint ep;       /* first member: events carry &ep */
	size_t off, len;          /* buf[off..len) is read but not yet echoed */
	bool waiting_to_send;     /* epoll interest is EPOLLOUT, not EPOLLIN */
	char buf[ECHO_BUF_SIZE];
};

__attribute__((format(printf, 1, 2)))
static noreturn void die(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static noreturn void usage(const char *problem, const char *arg)
{
	fprintf(stderr, PROG ": %s%s\nusage: " PROG " PORT...\n", problem, arg);
	exit(2);
}

static int parse_port(const char *arg)
{
	char *end;
	long port;

	errno = 0;
	port = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || port < 1 || port > 65535)
		usage("invalid port (expected 1-65535): ", arg);
	return (int)port;
}

/* Every connection costs a descriptor; allow as many as the hard limit. */
static void raise_fd_limit(void)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
		lim.rlim_cur = lim.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
			fprintf(stderr, PROG ": raising the open file limit: %s\n", strerror(errno));
	}
}

static void watch(int epfd, struct endpoint *ep, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = ep };

	if (epoll_ctl(epfd, EPOLL_CTL_ADD, ep->fd, &ev) < 0)
		die("epoll_ctl add: %s", strerror(errno));
}

static struct endpoint *new_endpoint(enum endpoint_kind kind, int fd)
{
	struct endpoint *ep = malloc(sizeof *ep);

	if (ep == NULL)
		die("out of memory");
	ep->kind = kind;
	ep->fd = fd;
	return ep;
}

/* SIGTERM and SIGINT arrive through a descriptor in the epoll set. */
static void watch_signals(int epfd)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		die("sigprocmask: %s", strerror(errno));
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		die("signalfd: %s", strerror(errno));
	watch(epfd, new_endpoint(SIGNALS, fd), EPOLLIN);
}

/*
 * Opens a non-blocking socket bound to 0.0.0.0:port, listening if it is a
 * stream socket. Returns -1 only for an sctp socket the kernel does not
 * support; any other failure is fatal.
 */
static int open_bound_socket(int type, int protocol, const char *proto_name, int port)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_ANY),
	};
	const int one = 1;
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);

	if (fd < 0) {
		if (protocol == IPPROTO_SCTP &&
		    (errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT))
			return -1;
		die("socket %s port %d: %s", proto_name, port, strerror(errno));
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		die("setsockopt SO_REUSEADDR %s port %d: %s", proto_name, port, strerror(errno));
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
		die("bind %s port %d: %s", proto_name, port, strerror(errno));
	if (type == SOCK_STREAM && listen(fd, SOMAXCONN) < 0)
		die("listen %s port %d: %s", proto_name, port, strerror(errno));
	return fd;
}

/* Serves tcp, udp and (when *sctp_supported) sctp on port. */
static void serve_port(int epfd, int port, bool *sctp_supported)
{
	int fd;

	fd = open_bound_socket(SOCK_STREAM, IPPROTO_TCP, "tcp", port);
	watch(epfd, new_endpoint(STREAM_LISTENER, fd), EPOLLIN);

	fd = open_bound_socket(SOCK_DGRAM, IPPROTO_UDP, "udp", port);
	watch(epfd, new_endpoint(DATAGRAM_SOCKET, fd), EPOLLIN);

	if (!*sctp_supported)
		return;
	fd = open_bound_socket(SOCK_STREAM, IPPROTO_SCTP, "sctp", port);
	if (fd < 0) {
		fprintf(stderr, PROG ": SCTP is not supported by this kernel (%s); serving tcp and udp only\n",
			strerror(errno));
		*sctp_supported = false;
		return;
	}
	watch(epfd, new_endpoint(STREAM_LISTENER, fd), EPOLLIN);
}

static void close_connection(struct connection *c)
{
	close(c->ep.fd); /* also removes it from the epoll set */
	free(c);
}

/* Accepts every pending connection on a tcp or sctp listener. */
static void accept_connections(int epfd, const struct endpoint *listener)
{
	for (;;) {
		int fd = accept4(listener->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				fprintf(stderr, PROG ": accept: %s\n", strerror(errno));
			return;
		}
		struct connection *c = malloc(sizeof *c);
		if (c == NULL) {
			fprintf(stderr, PROG ": out of memory; dropping a connection\n");
			close(fd);
			continue;
		}
		*c = (struct connection){ .ep = { STREAM_CONNECTION, fd } };
		watch(epfd, &c->ep, EPOLLIN);
	}
}

/* Reads once into an empty buffer. Returns false on EOF or error. */
static bool receive(struct connection *c)
{
	ssize_t n = recv(c->ep.fd, c->buf, sizeof c->buf, 0);

	if (n > 0) {
		c->off = 0;
		c->len = (size_t)n;
		return true;
	}
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
}

/* Echoes as much of the pending bytes as the socket takes. False on error. */
static bool flush(struct connection *c)
{
	while (c->off < c->len) {
		ssize_t n = send(c->ep.fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK;
		}
		c->off += (size_t)n;
	}
	return true;
}

/* Waits for writability while bytes are pending, for input otherwise. */
static void update_interest(int epfd, struct connection *c)
{
	bool pending = c->off < c->len;
	struct epoll_event ev = { .events = pending ? EPOLLOUT : EPOLLIN, .data.ptr = &c->ep };

	if (pending == c->waiting_to_send)
		return;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->ep.fd, &ev) < 0)
		die("epoll_ctl mod: %s", strerror(errno));
	c->waiting_to_send = pending;
}

/* One round of echo: read if nothing is pending, then write back. */
static void serve_connection(int epfd, struct connection *c)
{
	if ((c->off == c->len && !receive(c)) || !flush(c)) {
		close_connection(c);
		return;
	}
	update_interest(epfd, c);
}

/* Echoes one datagram; level-triggered epoll brings us back for the rest. */
static void echo_datagram(int fd)
{
	static char buf[MAX_DATAGRAM];
	struct sockaddr_in peer;
	socklen_t peer_len = sizeof peer;
	ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &peer_len);

	/* Best effort both ways, like UDP itself: errors just drop the datagram. */
	if (n >= 0)
		(void)sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, peer_len);
}

/* Runs until SIGTERM or SIGINT. */
static void run(int epfd)
{
	struct epoll_event events[EVENTS_PER_WAIT];

	for (;;) {
		int n = epoll_wait(epfd, events, EVENTS_PER_WAIT, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			struct endpoint *ep = events[i].data.ptr;
			switch (ep->kind) {
			case SIGNALS:
				return;
			case STREAM_LISTENER:
				accept_connections(epfd, ep);
				break;
			case DATAGRAM_SOCKET:
				echo_datagram(ep->fd);
				break;
			case STREAM_CONNECTION:
				serve_connection(epfd, (struct connection *)ep);
				break;
			}
		}
	}
}

int main(int argc, char **argv)
{
	bool sctp_supported = true;
	int epfd;

	if (argc < 2)
		usage("no ports given", "");
	for (int i = 1; i < argc; i++) /* validate all before binding any */
		parse_port(argv[i]);

	raise_fd_limit();
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	watch_signals(epfd);
	for (int i = 1; i < argc; i++)
		serve_port(epfd, parse_port(argv[i]), &sctp_supported);

	if (fputs("ready\n", stdout) == EOF || fflush(stdout) == EOF)
		die("writing the ready line: %s", strerror(errno));
	run(epfd);
	return 0; /* the kernel closes every socket */
}
