/*
 * net.h: sockets: listening (TCP and UNIX), accepting, connecting, and
 * printable addresses.
 *
 * Guarantees: every fd returned is close-on-exec; listening and accepted
 * sockets are non-blocking; IPv6 listeners are IPV6_V6ONLY so that "::" and
 * "0.0.0.0" can be bound side by side and peers are never IPv4-mapped.
 *
 * Never: resolves host names (addresses are numeric: DNS belongs to the
 * asynchronous resolver), blocks longer than the timeout given.
 *
 * Error strings (error_r) point into a static buffer of this module that the
 * next failing call overwrites.
 */
#ifndef YZ_NET_H
#define YZ_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Room for any printable address ("ffff:...:255.255.255.255" and a NUL). */
#define YZ_NET_ADDR_MAX 64

/* Bind+listen a TCP socket on addr ("0.0.0.0", "::", "127.0.0.1", "::1") and
 * port (0: the kernel picks one; see yz_net_local_addr); IPV6_V6ONLY on for
 * IPv6; SO_REUSEADDR; non-blocking, CLOEXEC. -1 + error_r. */
int yz_net_listen_tcp(const char *addr, unsigned port, int backlog, const char **error_r);
/* Bind+listen a UNIX stream socket at path (unlinks a stale socket, refuses
 * to replace anything else), mode applied. -1 + error_r. */
int yz_net_listen_unix(const char *path, mode_t mode, int backlog, const char **error_r);
/* Connect to a UNIX socket, non-blocking or blocking (for CLI use). */
int yz_net_connect_unix(const char *path, bool nonblock, const char **error_r);
/* Blocking connect to numeric TCP addr:port within timeout_ms; the fd
 * returned is blocking. -1 + error_r. */
int yz_net_connect_tcp(const char *addr, unsigned port, int timeout_ms, const char **error_r);
/* accept4 with CLOEXEC|NONBLOCK; fills a printable peer address "1.2.3.4" /
 * "::1" ("unix" for UNIX sockets) and port (addr_r/port_r may be NULL).
 * -1 with errno (EAGAIN when nothing is pending). */
int yz_net_accept(int lfd, char *addr_r, size_t addr_size, unsigned *port_r);
/* The local address/port of an fd, printable. 0 or -1 with errno. */
int yz_net_local_addr(int fd, char *addr_r, size_t addr_size, unsigned *port_r);
/* The peer address/port of a connected fd, printable. 0 or -1 with errno. */
int yz_net_peer_addr(int fd, char *addr_r, size_t addr_size, unsigned *port_r);

#endif
