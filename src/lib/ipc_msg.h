/*
 * ipc_msg.h: the one table of IPC messages between yizhan processes.
 *
 * Every frame carries YZ_IPC_VERSION; a receiver drops a connection on a
 * frame of another version, an unknown type, or a payload that does not
 * decode exactly (yz_ipc_end). Fields are listed in order; "->" is the
 * reply. Requests carry a request id that the reply repeats.
 *
 * Connections between roles are brokered by the master: a role asks for a
 * connection to another role (CONNECT), the master makes a socketpair and
 * hands one end to each (CONNECT_REPLY to the asker, NEW_CLIENT to the
 * server). The master never reads network input, only these frames.
 * INTERNALS.md has the same table in prose; keep both true.
 */
#ifndef YZ_IPC_MSG_H
#define YZ_IPC_MSG_H

/* Roles, as numbered on the wire. */
enum yz_role {
	YZ_ROLE_MASTER = 0,
	YZ_ROLE_DIRECTORY = 1,
	YZ_ROLE_SMTPD = 2,
	YZ_ROLE_QUEUE = 3,
	YZ_ROLE_MAILBOX = 4,
	YZ_ROLE_ADMIN = 5,
	YZ_ROLE__COUNT
};

/* Bounds that every decoder applies to string fields. */
#define YZ_IPC_ADDR_MAX 512      /* an address or user name */
#define YZ_IPC_TEXT_MAX 4096     /* a status text */
#define YZ_IPC_SECRET_MAX 1024   /* a password */
#define YZ_IPC_HEADER_MAX 65536  /* headers prepended at delivery */
#define YZ_IPC_STATUS_MAX (1 << 20)

enum yz_msg_type {
	/* master <-> role control channel (fd 3 of every role) */
	YZ_MSG_ROLE_READY = 1,      /* role -> master: u32 role; the role serves */
	YZ_MSG_ROLE_STOP = 2,       /* master -> role: graceful stop: close listeners, finish sessions, exit */
	YZ_MSG_CONNECT = 3,         /* role -> master: u32 target role -> CONNECT_REPLY */
	YZ_MSG_CONNECT_REPLY = 4,   /* master -> role: bool ok, [fd] (fd only if ok) */
	YZ_MSG_NEW_CLIENT = 5,      /* master -> server role: u32 client role, fd */
	YZ_MSG_LISTENER = 6,        /* master -> role: str name ("smtp", "submission", ...), fd (listening socket) */
	YZ_MSG_LISTENERS_DONE = 7,  /* master -> role: every listener has been sent */

	/* yizhan CLI <-> master control socket */
	YZ_MSG_CTL_STATUS = 20,     /* -> CTL_STATUS_REPLY: str version, u64 master pid, u64 uptime s, bool dev, u32 n, n x { str role, u64 pid, u64 uptime s, u32 restarts, str state } */
	YZ_MSG_CTL_STATUS_REPLY = 21,
	YZ_MSG_CTL_RELOAD = 22,     /* -> CTL_OK | CTL_ERROR */
	YZ_MSG_CTL_STOP = 23,       /* -> CTL_OK */
	YZ_MSG_CTL_OK = 24,         /* str message */
	YZ_MSG_CTL_ERROR = 25,      /* str message */

	/* clients -> directory */
	YZ_MSG_DIR_RESOLVE = 40,    /* str address -> DIR_RESOLVE_REPLY */
	YZ_MSG_DIR_RESOLVE_REPLY = 41, /* u32 enum yz_resolve_status, str error, u32 n, n x { str address, bool external, str folder ("" = none), u64 quota } */
	YZ_MSG_DIR_AUTH = 42,       /* str user, str password, str client ip, str service -> DIR_AUTH_REPLY (delayed after failures) */
	YZ_MSG_DIR_AUTH_REPLY = 43, /* u32 enum yz_auth_result, str canonical user ("" unless OK) */
	YZ_MSG_DIR_DOMAIN = 44,     /* str domain -> DIR_BOOL_REPLY: is it a local domain */
	YZ_MSG_DIR_SENDER_OWNED = 45, /* str login user, str sender address -> DIR_BOOL_REPLY */
	YZ_MSG_DIR_BOOL_REPLY = 46, /* bool value, bool tempfail */

	/* smtpd -> queue */
	YZ_MSG_QUEUE_NEW = 60,      /* str queue id, str segment ("" = active/ file), u64 offset: committed -> QUEUE_ACK */
	YZ_MSG_QUEUE_ACK = 61,      /* (empty) */

	/* queue -> mailbox, smtpd -> mailbox */
	YZ_MSG_MBOX_DELIVER = 80,   /* str queue id, u32 rcpt index, str recipient (as addressed), str account, str folder, u64 quota, bool maybe_redelivery, str header, fd content, u64 offset, u64 length -> MBOX_DELIVER_REPLY */
	YZ_MSG_MBOX_DELIVER_REPLY = 81, /* u32 enum yz_mbox_status, str text */
	YZ_MSG_MBOX_QUOTA = 82,     /* str account, u64 quota, u64 incoming size -> MBOX_QUOTA_REPLY */
	YZ_MSG_MBOX_QUOTA_REPLY = 83, /* bool over, bool tempfail, u64 used bytes */

	/* any reply slot: a request that could not be served */
	YZ_MSG_ERROR = 120,         /* u32 code (enum yz_msg_error), str text */
};

/* Wire values of DIR_RESOLVE_REPLY's status and DIR_AUTH_REPLY's result.
 * The directory role checks at compile time that its own enums match. */
enum yz_wire_resolve {
	YZ_WIRE_RESOLVE_OK = 0,
	YZ_WIRE_RESOLVE_NOT_LOCAL = 1,
	YZ_WIRE_RESOLVE_UNKNOWN = 2,
	YZ_WIRE_RESOLVE_DISABLED = 3,
	YZ_WIRE_RESOLVE_LOOP = 4,
	YZ_WIRE_RESOLVE_TOO_MANY = 5,
	YZ_WIRE_RESOLVE_TEMPFAIL = 6,
};
enum yz_wire_auth {
	YZ_WIRE_AUTH_OK = 0,
	YZ_WIRE_AUTH_FAIL = 1,
	YZ_WIRE_AUTH_DISABLED = 2,
	YZ_WIRE_AUTH_TEMPFAIL = 3,
};

enum yz_msg_error { YZ_MSG_ERR_MALFORMED = 1, YZ_MSG_ERR_UNSUPPORTED = 2, YZ_MSG_ERR_TEMP = 3 };

enum yz_mbox_status {
	YZ_MBOX_DELIVERED = 0,
	YZ_MBOX_DUPLICATE = 1,  /* was already delivered earlier: success */
	YZ_MBOX_OVER_QUOTA = 2,
	YZ_MBOX_TEMPFAIL = 3,
	YZ_MBOX_PERMFAIL = 4,
};

const char *yz_role_name(enum yz_role role);
int yz_role_from_name(const char *name); /* -1 if unknown */

#endif
