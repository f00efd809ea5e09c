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
 * Before it connects, it checks what the runtime gave it, so that input the
 * runtime got wrong is reported as such even when the agent is down (and is
 * never answered with "try again later", which would invite endless
 * retries). The agent checks the same rules again (agent/cni/input.ts, keep
 * the two in sync) and everything that depends on the command.
 *
 * It writes a CNI error result to stdout and exits 1 when:
 *   code 4    a CNI_* variable breaks its rule (see ENV_RULES below): unknown
 *             CNI_COMMAND, an overlong or malformed container ID, interface
 *             name or netns path, overlong or control characters in CNI_ARGS
 *             or CNI_PATH
 *   code 5    stdin cannot be read, or is not closed within 5 s
 *   code 6    stdin is empty or not valid JSON
 *   code 7    invalid network config: not a JSON object, larger than 1 MiB,
 *             or a bad agentSocket
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
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROTOCOL_LINE        "PALISADE-CNI/1\n"
#define DEFAULT_AGENT_SOCKET "/run/palisade/cni.sock"
#define AGENT_SOCKET_KEY     "agentSocket"
#define MAX_MESSAGE_BYTES    (1024 * 1024)
#define AGENT_TIMEOUT_SEC    60
/* A runtime writes the configuration and closes stdin at once; one that
 * never closes it must not hang the plugin (and the pod's sandbox) forever. */
#define STDIN_TIMEOUT_SEC    5
/* JSON nesting deeper than this is refused (the parser recurses). */
#define MAX_JSON_DEPTH       64

/* CNI error codes used here (CNI spec 1.1, "Error"). */
enum cni_error {
	CNI_ERR_INVALID_ENV = 4,
	CNI_ERR_IO = 5,
	CNI_ERR_DECODE = 6,
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

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads all of stdin into config[] within STDIN_TIMEOUT_SEC; returns its length. */
static size_t read_config(void)
{
	const long long deadline = now_ms() + STDIN_TIMEOUT_SEC * 1000LL;
	size_t len = 0;

	for (;;) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		long long left = deadline - now_ms();
		int ready = left > 0 ? poll(&pfd, 1, (int)left) : 0;
		if (ready < 0) {
			if (errno == EINTR)
				continue;
			fail(CNI_ERR_IO, "cannot read the network configuration",
			     "poll stdin: %s", strerror(errno));
		}
		if (ready == 0)
			fail(CNI_ERR_IO, "cannot read the network configuration",
			     "stdin: no end of input within %d s (%zu bytes read)",
			     STDIN_TIMEOUT_SEC, len);
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
 * A validating JSON parser (RFC 8259 syntax; UTF-8 is not checked) over the
 * configuration. It exists so that a configuration that is not JSON is a
 * decode error decided here, and so that agentSocket is read from the
 * top-level object exactly as the agent's JSON.parse() reads it (the last
 * occurrence of a duplicate key wins, as there).
 */
struct json {
	const char *p, *start, *end;
	int depth;
	const char *agent_socket; /* value of the top-level "agentSocket", or NULL */
};

__attribute__((format(printf, 2, 3)))
static noreturn void json_fail(const struct json *j, const char *fmt, ...)
{
	char why[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	fail(CNI_ERR_DECODE, "network configuration on stdin is not valid JSON",
	     "at byte %zu: %s", (size_t)(j->p - j->start), why);
}

static void json_ws(struct json *j)
{
	j->p = skip_whitespace(j->p, j->end);
}

static void json_literal(struct json *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		json_fail(j, "unexpected character");
	j->p += n;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static void json_digits(struct json *j)
{
	if (j->p == j->end || !is_digit(*j->p))
		json_fail(j, "a digit expected");
	while (j->p < j->end && is_digit(*j->p))
		j->p++;
}

static void json_number(struct json *j)
{
	if (*j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else
		json_digits(j);
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		json_digits(j);
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		json_digits(j);
	}
}

/* Skips a string (j->p at its opening quote); returns where its contents begin. */
static const char *json_string(struct json *j)
{
	const char *contents = ++j->p;

	for (;;) {
		if (j->p == j->end)
			json_fail(j, "string not terminated");
		unsigned char c = (unsigned char)*j->p++;
		if (c == '"')
			return contents;
		if (c < 0x20)
			json_fail(j, "control character in a string");
		if (c != '\\')
			continue;
		if (j->p == j->end)
			json_fail(j, "string not terminated");
		c = (unsigned char)*j->p++;
		if (c == 'u') {
			for (int i = 0; i < 4; i++, j->p++)
				if (j->p == j->end || !strchr("0123456789abcdefABCDEF", *j->p) || *j->p == '\0')
					json_fail(j, "bad \\u escape");
		} else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
			json_fail(j, "bad escape");
		}
	}
}

static void json_value(struct json *j);

static void json_container(struct json *j, char close, int object)
{
	if (++j->depth > MAX_JSON_DEPTH)
		json_fail(j, "nested deeper than %d", MAX_JSON_DEPTH);
	j->p++;
	json_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return;
	}
	for (;;) {
		if (object) {
			if (j->p == j->end || *j->p != '"')
				json_fail(j, "a member name expected");
			const char *key = json_string(j);
			size_t key_len = (size_t)(j->p - 1 - key);
			json_ws(j);
			if (j->p == j->end || *j->p != ':')
				json_fail(j, "':' expected");
			j->p++;
			json_ws(j);
			if (j->depth == 1 && key_len == sizeof AGENT_SOCKET_KEY - 1 &&
			    memcmp(key, AGENT_SOCKET_KEY, key_len) == 0)
				j->agent_socket = j->p;
		}
		json_value(j);
		json_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			json_ws(j);
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			j->depth--;
			return;
		}
		json_fail(j, "',' or '%c' expected", close);
	}
}

static void json_value(struct json *j)
{
	if (j->p == j->end)
		json_fail(j, "unexpected end of input");
	switch (*j->p) {
	case '{': json_container(j, '}', 1); break;
	case '[': json_container(j, ']', 0); break;
	case '"': json_string(j); break;
	case 't': json_literal(j, "true"); break;
	case 'f': json_literal(j, "false"); break;
	case 'n': json_literal(j, "null"); break;
	default:
		if (*j->p == '-' || is_digit(*j->p))
			json_number(j);
		else
			json_fail(j, "unexpected character");
	}
}

/*
 * Checks that the configuration is one JSON object and copies its
 * agentSocket to out (out_size bytes), or the default when it has none.
 */
static void parse_config(const char *cfg, size_t len, char *out, size_t out_size)
{
	struct json j = { .p = cfg, .start = cfg, .end = cfg + len };

	json_ws(&j);
	if (j.p == j.end)
		fail(CNI_ERR_DECODE, "failed to decode the network configuration",
		     "stdin is empty");
	int object = *j.p == '{';
	json_value(&j);
	json_ws(&j);
	if (j.p != j.end)
		json_fail(&j, "more after the end of the JSON value");
	if (!object)
		fail(CNI_ERR_INVALID_CONFIG, MSG_INVALID_CONFIG,
		     "the network configuration must be a JSON object");
	if (j.agent_socket)
		copy_socket_path(j.agent_socket, j.end, out, out_size);
	else
		snprintf(out, out_size, "%s", DEFAULT_AGENT_SOCKET);
}

/*
 * The CNI_* variables' rules, checked when a variable is set and not empty
 * (which variables a command requires is the agent's to decide). The same
 * rules as agent/cni/input.ts.
 */
enum charset {
	ANY_TEXT,     /* no control characters */
	CONTAINER_ID, /* spec: [A-Za-z0-9][A-Za-z0-9_.-]* */
	IF_NAME,      /* printable ASCII but / : " ' \ # and not "." or ".." */
	NETNS_PATH,   /* absolute, of [A-Za-z0-9/_.:@+=,-] */
};

static const struct env_rule {
	const char *name;
	size_t max;
	enum charset charset;
} ENV_RULES[] = {
	{ "CNI_CONTAINERID", 256,  CONTAINER_ID },
	{ "CNI_NETNS",       1024, NETNS_PATH },
	{ "CNI_IFNAME",      15,   IF_NAME },   /* IFNAMSIZ less the NUL */
	{ "CNI_ARGS",        4096, ANY_TEXT },
	{ "CNI_PATH",        4096, ANY_TEXT },
};

static const char *const COMMANDS[] = { "ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC" };

static int is_alnum(unsigned char c)
{
	return is_digit((char)c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Whether character c at index i is allowed by the charset. */
static int allowed(enum charset set, size_t i, unsigned char c)
{
	switch (set) {
	case ANY_TEXT:
		return c >= 0x20 && c != 0x7f;
	case CONTAINER_ID:
		return is_alnum(c) || (i > 0 && strchr("_.-", c) && c != '\0');
	case IF_NAME:
		return c > 0x20 && c < 0x7f && !strchr("/:\"'\\#", c);
	case NETNS_PATH:
		return (i == 0) ? c == '/' : (is_alnum(c) || (strchr("/_.:@+=,-", c) && c != '\0'));
	}
	return 0;
}

static const char *const CHARSET_RULE[] = {
	[ANY_TEXT] = "must not contain control characters",
	[CONTAINER_ID] = "must be alphanumeric, \"_\", \".\" or \"-\", starting alphanumeric",
	[IF_NAME] = "must be printable ASCII, not \".\" or \"..\", without whitespace or any of / : \" ' \\ #",
	[NETNS_PATH] = "must be an absolute path of letters, digits and / _ . - : @ + = , only",
};

/* Fails with code 4, naming the variable in the message. details is printf-style. */
__attribute__((format(printf, 2, 3)))
static noreturn void fail_env(const char *name, const char *details_fmt, ...)
{
	char msg[64], details[256];
	va_list ap;

	va_start(ap, details_fmt);
	vsnprintf(details, sizeof details, details_fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof msg, "invalid %s", name);
	fail(CNI_ERR_INVALID_ENV, msg, "%s", details);
}

static void check_environment(void)
{
	const char *command = getenv("CNI_COMMAND");
	size_t i;

	for (i = 0; command && i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
		if (strcmp(command, COMMANDS[i]) == 0)
			break;
	if (!command || i == sizeof COMMANDS / sizeof COMMANDS[0])
		fail_env("CNI_COMMAND", "CNI_COMMAND must be one of ADD, DEL, CHECK, VERSION, STATUS, GC");

	for (const struct env_rule *r = ENV_RULES; r < ENV_RULES + sizeof ENV_RULES / sizeof ENV_RULES[0]; r++) {
		const char *value = getenv(r->name);
		if (!value || !*value)
			continue;
		size_t len = strlen(value);
		if (len > r->max)
			fail_env(r->name, "%s is longer than %zu characters (%zu)", r->name, r->max, len);
		for (size_t k = 0; k < len; k++)
			if (!allowed(r->charset, k, (unsigned char)value[k]))
				fail_env(r->name, "%s %s (character %zu)", r->name, CHARSET_RULE[r->charset], k + 1);
		if (r->charset == IF_NAME && (strcmp(value, ".") == 0 || strcmp(value, "..") == 0))
			fail_env(r->name, "%s %s", r->name, CHARSET_RULE[r->charset]);
	}
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
	/* stdin first: a runtime writing it must not meet a closed pipe. */
	size_t config_len = read_config();
	size_t response_len, body;
	int fd, code;

	check_environment();
	parse_config(config, config_len, addr.sun_path, sizeof addr.sun_path);
	fd = connect_agent(&addr);
	send_request(fd, config_len, addr.sun_path);
	response_len = receive_response(fd, addr.sun_path);
	close(fd);

	code = parse_exit_code(response_len, addr.sun_path, &body);
	write_stdout(response + body, response_len - body);
	return code;
}
