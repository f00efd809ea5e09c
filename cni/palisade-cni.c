/*
 * palisade-cni: the thin CNI plugin binary (CNI spec 1.1).
 *
 * The container runtime executes this binary for every CNI operation. It does
 * no networking itself: it forwards the request to the Palisade node agent
 * over a unix stream socket and relays the agent's answer.
 *
 * Agent socket: the string field "agentSocket" of the network configuration,
 * or /run/palisade/cni.sock when the field is absent.
 *
 * Protocol, version 1 (one request per connection):
 *   request   "PALISADE-CNI/1\n"
 *             "NAME=VALUE\0" for each of CNI_COMMAND, CNI_CONTAINERID,
 *                CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH that is set,
 *                in that order
 *             "\0"                         (end of the environment)
 *             the network configuration exactly as read from stdin
 *             then the plugin shuts down its sending side (EOF for the agent)
 *   response  a decimal exit code 0-255 and "\n", then the bytes for stdout,
 *             up to EOF
 * The plugin writes those bytes to stdout and exits with that code.
 *
 * When it cannot get a well-formed answer it writes a CNI error result to
 * stdout and exits 1:
 *   code 5    stdin cannot be read
 *   code 7    invalid network config: larger than 1 MiB, or a bad agentSocket
 *   code 11   agent not reachable, connection lost, or no progress for 60 s
 *             on the connection (CNI "try again later")
 *   code 999  malformed response (also: a response larger than 1 MiB)
 *
 * It is exec'd once per pod operation, so it stays small: libc only, no heap
 * allocation (the configuration and the response live in static buffers),
 * and the request goes out in one sendmsg() call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define PROTOCOL_LINE        "PALISADE-CNI/1\n"
#define DEFAULT_AGENT_SOCKET "/run/palisade/cni.sock"
#define AGENT_SOCKET_KEY     "\"agentSocket\""
#define MAX_MESSAGE_BYTES    (1024 * 1024)
#define AGENT_TIMEOUT_SEC    60

/* CNI error codes used here (CNI spec 1.1, "Error"). */
enum cni_error {
	CNI_ERR_IO = 5,
	CNI_ERR_INVALID_CONFIG = 7,
	CNI_ERR_TRY_AGAIN_LATER = 11,
	CNI_ERR_MALFORMED_RESPONSE = 999,
};

#define MSG_INVALID_CONFIG  "invalid network config"
#define MSG_UNREACHABLE     "palisade agent is not reachable"
#define MSG_CONNECTION_LOST "lost connection to palisade agent"
#define MSG_TIMED_OUT       "palisade agent did not answer in time"
#define MSG_MALFORMED       "malformed response from palisade agent"

/* The environment variables forwarded to the agent, in wire order. */
static const char *const FORWARDED_ENV[] = {
	"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS",
	"CNI_IFNAME",  "CNI_ARGS",        "CNI_PATH",
};
#define FORWARDED_ENV_COUNT (sizeof FORWARDED_ENV / sizeof FORWARDED_ENV[0])

/* One extra byte in each buffer tells "exactly full" from "too large". */
static char config[MAX_MESSAGE_BYTES + 1];
static char response[MAX_MESSAGE_BYTES + 1];

/* Writes s to stdout as a JSON string literal (assumes UTF-8 text). */
static void put_json_string(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':  fputs("\\\"", stdout); break;
		case '\\': fputs("\\\\", stdout); break;
		case '\n': fputs("\\n", stdout); break;
		case '\r': fputs("\\r", stdout); break;
		case '\t': fputs("\\t", stdout); break;
		default:
			if (*p < 0x20)
				printf("\\u%04x", *p);
			else
				putchar(*p);
		}
	}
	putchar('"');
}

/* Writes a CNI error result to stdout and exits 1. details is printf-style. */
__attribute__((format(printf, 3, 4)))
static noreturn void fail(int code, const char *msg, const char *details_fmt, ...)
{
	char details[512];
	va_list ap;

	va_start(ap, details_fmt);
	vsnprintf(details, sizeof details, details_fmt, ap);
	va_end(ap);

	printf("{\"cniVersion\":\"1.1.0\",\"code\":%d,\"msg\":", code);
	put_json_string(msg);
	fputs(",\"details\":", stdout);
	put_json_string(details);
	fputs("}\n", stdout);
	fflush(stdout);
	exit(1);
}

/* Fails a send or receive on the agent connection that set errno. */
static noreturn void fail_transfer(const char *op, const char *path)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK) /* SO_SNDTIMEO, SO_RCVTIMEO */
		fail(CNI_ERR_TRY_AGAIN_LATER, MSG_TIMED_OUT,
		     "%s %s: no progress for %d s", op, path, AGENT_TIMEOUT_SEC);
	fail(CNI_ERR_TRY_AGAIN_LATER, MSG_CONNECTION_LOST,
	     "%s %s: %s", op, path, strerror(errno));
}

/* Reads all of stdin into config[]; returns its length. */
static size_t read_config(void)
{
	size_t len = 0;

	for (;;) {
		ssize_t n = read(STDIN_FILENO, config + len, sizeof config - len);
		if (n == 0)
			return len;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail(CNI_ERR_IO, "cannot read the network configuration",
			     "read stdin: %s", strerror(errno));
		}
		len += (size_t)n;
		if (len > MAX_MESSAGE_BYTES)
			fail(CNI_ERR_INVALID_CONFIG, MSG_INVALID_CONFIG,
			     "network configuration is larger than %d bytes",
			     MAX_MESSAGE_BYTES);
	}
}

static const char *skip_whitespace(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/*
 * Copies the JSON string starting at p (at its opening quote) into out, which
 * holds out_size bytes. Escape sequences are not supported: a value with a
 * backslash, a control character, no closing quote, no characters, or more
 * than out_size - 1 bytes is rejected as invalid config.
 */
static void copy_socket_path(const char *p, const char *end, char *out, size_t out_size)
{
	size_t len = 0;

	if (p == end || *p != '"')
		fail(CNI_ERR_INVALID_CONFIG, MSG_INVALID_CONFIG,
		     "agentSocket must be a string");
	for (p++; p < end && *p != '"'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '\\')
			fail(CNI_ERR_INVALID_CONFIG, MSG_INVALID_CONFIG,
			     "agentSocket must not contain backslashes (escape sequences are not supported)");
		if (c < 0x20)
			fail(CNI_ERR_INVALID_CONFIG, MSG_INVALID_CONFIG,
			     "agentSocket must not contain control characters");
		if (len == out_size - 1)
			fail(CNI_ERR_INVALID_CONFIG, MSG_INVALID_CONFIG,
			     "agentSocket is longer than %zu bytes", out_size - 1);
		out[len++] = (char)c;
	}
	if (p == end)
		fail(CNI_ERR_INVALID_CONFIG, MSG_INVALID_CONFIG,
		     "agentSocket string is not terminated");
	if (len == 0)
		fail(CNI_ERR_INVALID_CONFIG, MSG_INVALID_CONFIG,
		     "agentSocket must not be empty");
	out[len] = '\0';
}

/*
 * Finds the agent socket path in the network configuration and copies it to
 * out (out_size bytes), or copies the default when there is none.
 *
 * This is a scanner, not a JSON parser: it takes the first occurrence of
 * "agentSocket" that is followed by a colon (so it is a key, at whatever
 * nesting depth) and reads the string after it. The runtime hands us
 * well-formed JSON and the key is ours, so this is enough, and it keeps the
 * plugin free of dependencies.
 */
static void find_agent_socket(const char *cfg, size_t len, char *out, size_t out_size)
{
	const char *end = cfg + len;
	const char *p = cfg;

	while ((p = memmem(p, (size_t)(end - p), AGENT_SOCKET_KEY,
			   sizeof AGENT_SOCKET_KEY - 1)) != NULL) {
		const char *after = skip_whitespace(p + sizeof AGENT_SOCKET_KEY - 1, end);
		if (after < end && *after == ':') {
			copy_socket_path(skip_whitespace(after + 1, end), end, out, out_size);
			return;
		}
		p++; /* a string value that happens to read "agentSocket" */
	}
	snprintf(out, out_size, "%s", DEFAULT_AGENT_SOCKET);
}

/* Connects to the agent with send and receive timeouts set. */
static int connect_agent(const struct sockaddr_un *addr)
{
	const struct timeval timeout = { .tv_sec = AGENT_TIMEOUT_SEC };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		fail(CNI_ERR_TRY_AGAIN_LATER, MSG_UNREACHABLE,
		     "socket: %s", strerror(errno));
	/* SO_SNDTIMEO also bounds connect() on a unix socket with a full backlog. */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0)
		fail(CNI_ERR_TRY_AGAIN_LATER, MSG_UNREACHABLE,
		     "set socket timeouts: %s", strerror(errno));
	if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) < 0)
		fail(CNI_ERR_TRY_AGAIN_LATER, MSG_UNREACHABLE,
		     "connect %s: %s", addr->sun_path, strerror(errno));
	return fd;
}

/* Sends all of iov[0..count), continuing after partial sends. */
static void send_all(int fd, struct iovec *iov, size_t count, const char *path)
{
	while (count > 0) {
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = count };
		ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail_transfer("send to", path);
		}
		size_t sent = (size_t)n;
		while (count > 0 && sent >= iov->iov_len) {
			sent -= iov->iov_len;
			iov++;
			count--;
		}
		if (count > 0) {
			iov->iov_base = (char *)iov->iov_base + sent;
			iov->iov_len -= sent;
		}
	}
}

/* Sends the version line, the forwarded environment and the configuration. */
static void send_request(int fd, size_t config_len, const char *path)
{
	/* version line + 3 per variable + end of environment + configuration */
	struct iovec iov[1 + 3 * FORWARDED_ENV_COUNT + 2];
	size_t count = 0;

	iov[count++] = (struct iovec){ PROTOCOL_LINE, sizeof PROTOCOL_LINE - 1 };
	for (size_t i = 0; i < FORWARDED_ENV_COUNT; i++) {
		const char *value = getenv(FORWARDED_ENV[i]);
		if (value == NULL)
			continue;
		iov[count++] = (struct iovec){ (char *)FORWARDED_ENV[i], strlen(FORWARDED_ENV[i]) };
		iov[count++] = (struct iovec){ "=", 1 };
		/* includes the value's terminating NUL, the record separator */
		iov[count++] = (struct iovec){ (char *)value, strlen(value) + 1 };
	}
	iov[count++] = (struct iovec){ "", 1 };
	iov[count++] = (struct iovec){ config, config_len };
	send_all(fd, iov, count, path);

	if (shutdown(fd, SHUT_WR) < 0)
		fail_transfer("shutdown", path);
}

/* Reads the agent's response into response[] until EOF; returns its length. */
static size_t receive_response(int fd, const char *path)
{
	size_t len = 0;

	for (;;) {
		ssize_t n = recv(fd, response + len, sizeof response - len, 0);
		if (n == 0)
			return len;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail_transfer("receive from", path);
		}
		len += (size_t)n;
		if (len > MAX_MESSAGE_BYTES)
			fail(CNI_ERR_MALFORMED_RESPONSE, MSG_MALFORMED,
			     "response from %s is larger than %d bytes",
			     path, MAX_MESSAGE_BYTES);
	}
}

/*
 * Parses the "CODE\n" line at the start of the response. Returns the exit
 * code and stores the offset of the stdout bytes in *body.
 */
static int parse_exit_code(size_t len, const char *path, size_t *body)
{
	int code = 0;
	size_t i = 0;

	if (len == 0)
		fail(CNI_ERR_MALFORMED_RESPONSE, MSG_MALFORMED,
		     "%s closed the connection without answering", path);
	for (; i < len && i < 3 && response[i] >= '0' && response[i] <= '9'; i++)
		code = code * 10 + (response[i] - '0');
	if (i == 0 || i == len || response[i] != '\n' || code > 255)
		fail(CNI_ERR_MALFORMED_RESPONSE, MSG_MALFORMED,
		     "response from %s does not start with an exit code 0-255 and a newline",
		     path);
	*body = i + 1;
	return code;
}

static void write_stdout(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "palisade-cni: write stdout: %s\n", strerror(errno));
			exit(1);
		}
		buf += n;
		len -= (size_t)n;
	}
}

int main(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t config_len = read_config();
	size_t response_len, body;
	int fd, code;

	find_agent_socket(config, config_len, addr.sun_path, sizeof addr.sun_path);
	fd = connect_agent(&addr);
	send_request(fd, config_len, addr.sun_path);
	response_len = receive_response(fd, addr.sun_path);
	close(fd);

	code = parse_exit_code(response_len, addr.sun_path, &body);
	write_stdout(response + body, response_len - body);
	return code;
}
