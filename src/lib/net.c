/*
 * net.c: socket helpers.
 *
 * Guarantees: see net.h (CLOEXEC everywhere, non-blocking listeners and
 * accepted sockets, IPV6_V6ONLY, numeric addresses only, bounded waits).
 *
 * Never: resolves names, leaks an fd on a failure path, unlinks a path that
 * is not a socket.
 */
#include "lib/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/file.h"

/* Longest error text kept. */
#define NET_ERROR_MAX 256

static char net_error[NET_ERROR_MAX];

/* Format "what: strerror(e)" into the static buffer. */
static const char *net_err(const char *what, int e)
{
	int n = snprintf(net_error, sizeof net_error, "%.160s: %.80s", what, strerror(e));
	(void)n; /* bounded by the precisions */
	return net_error;
}

/* Parse a numeric address into ss; 0 or -1. */
static int net_parse(const char *addr, unsigned port, struct sockaddr_storage *ss,
		     socklen_t *len_r)
{
	memset(ss, 0, sizeof *ss);
	if (port > 65535)
		return -1;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len_r = sizeof *sin;
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len_r = sizeof *sin6;
		return 0;
	}
	return -1;
}

/* Print a socket address; IPv4-mapped IPv6 is shown as IPv4. */
static int net_format(const struct sockaddr_storage *ss, socklen_t len, char *addr_r,
		      size_t addr_size, unsigned *port_r)
{
	char tmp[YZ_NET_ADDR_MAX];
	unsigned port = 0;
	const char *s = tmp;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		if (inet_ntop(AF_INET, &sin->sin_addr, tmp, sizeof tmp) == NULL)
			return -1;
		port = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			if (inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], tmp, sizeof tmp) == NULL)
				return -1;
		} else if (inet_ntop(AF_INET6, &sin6->sin6_addr, tmp, sizeof tmp) == NULL) {
			return -1;
		}
		port = ntohs(sin6->sin6_port);
	} else if (ss->ss_family == AF_UNIX) {
		s = "unix";
	} else {
		errno = EAFNOSUPPORT;
		return -1;
	}
	(void)len;
	if (addr_r != NULL && addr_size > 0) {
		size_t n = strlen(s);
		if (n >= addr_size) {
			errno = ENOSPC;
			return -1;
		}
		memcpy(addr_r, s, n + 1);
	}
	if (port_r != NULL)
		*port_r = port;
	return 0;
}

/* Listening TCP socket. */
int yz_net_listen_tcp(const char *addr, unsigned port, int backlog, const char **error_r)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (net_parse(addr, port, &ss, &len) < 0) {
		int n = snprintf(net_error, sizeof net_error, "invalid address or port: %.64s %u",
				 addr, port);
		(void)n;
		*error_r = net_error;
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = net_err("socket", errno);
		return -1;
	}
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)) {
		*error_r = net_err("setsockopt", errno);
		close(fd);
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		char what[96];
		int n = snprintf(what, sizeof what, "bind %.64s port %u", addr, port);
		(void)n;
		*error_r = net_err(what, errno);
		close(fd);
		return -1;
	}
	if (listen(fd, backlog) < 0) {
		*error_r = net_err("listen", errno);
		close(fd);
		return -1;
	}
	return fd;
}

/* Fill a sockaddr_un; -1 if path does not fit. */
static int net_unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof sun->sun_path)
		return -1;
	memcpy(sun->sun_path, path, n + 1);
	return 0;
}

/* Listening UNIX socket. */
int yz_net_listen_unix(const char *path, mode_t mode, int backlog, const char **error_r)
{
	struct sockaddr_un sun;
	if (net_unix_addr(path, &sun) < 0) {
		*error_r = net_err("unix socket path", ENAMETOOLONG);
		return -1;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*error_r = net_err(path, EEXIST);
			return -1;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			*error_r = net_err(path, errno);
			return -1;
		}
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = net_err("socket", errno);
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		*error_r = net_err(path, errno);
		close(fd);
		return -1;
	}
	if (chmod(path, mode) < 0 || listen(fd, backlog) < 0) {
		*error_r = net_err(path, errno);
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

/* Connect to a UNIX socket. */
int yz_net_connect_unix(const char *path, bool nonblock, const char **error_r)
{
	struct sockaddr_un sun;
	if (net_unix_addr(path, &sun) < 0) {
		*error_r = net_err("unix socket path", ENAMETOOLONG);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0) {
		*error_r = net_err("socket", errno);
		return -1;
	}
	int r;
	do
		r = connect(fd, (struct sockaddr *)&sun, sizeof sun);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		/* A UNIX connect does not complete later: EAGAIN means the
		 * listener's backlog is full, an error like any other. */
		*error_r = net_err(path, errno);
		close(fd);
		return -1;
	}
	return fd;
}

/* Blocking TCP connect with a timeout. */
int yz_net_connect_tcp(const char *addr, unsigned port, int timeout_ms, const char **error_r)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (net_parse(addr, port, &ss, &len) < 0 || port == 0) {
		int n = snprintf(net_error, sizeof net_error, "invalid address or port: %.64s %u",
				 addr, port);
		(void)n;
		*error_r = net_error;
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = net_err("socket", errno);
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		if (errno != EINPROGRESS && errno != EINTR) {
			*error_r = net_err("connect", errno);
			close(fd);
			return -1;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int r;
		do
			r = poll(&pfd, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r <= 0) {
			*error_r = net_err("connect", r == 0 ? ETIMEDOUT : errno);
			close(fd);
			return -1;
		}
		int err = 0;
		socklen_t elen = sizeof err;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err != 0) {
			*error_r = net_err("connect", err);
			close(fd);
			return -1;
		}
	}
	if (yz_fd_set_nonblock(fd, false) < 0) {
		*error_r = net_err("fcntl", errno);
		close(fd);
		return -1;
	}
	return fd;
}

/* Accept one connection. */
int yz_net_accept(int lfd, char *addr_r, size_t addr_size, unsigned *port_r)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;
	do {
		len = sizeof ss;
		fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -1;
	if (net_format(&ss, len, addr_r, addr_size, port_r) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Local address of fd. */
int yz_net_local_addr(int fd, char *addr_r, size_t addr_size, unsigned *port_r)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	return net_format(&ss, len, addr_r, addr_size, port_r);
}

/* Peer address of fd. */
int yz_net_peer_addr(int fd, char *addr_r, size_t addr_size, unsigned *port_r)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	return net_format(&ss, len, addr_r, addr_size, port_r);
}
