/*
 * config_params.h: THE table of yizhan.conf parameters (an X-macro list).
 *
 * Every parameter exists once, here: its name, type, default, dev-mode
 * default, bounds and documentation. From this one table come the
 * parameter ids (enum yz_param_id in config.h), the parser's validation,
 * the output of `yizhan config` and docs/configuration.md. Adding a
 * parameter is adding one line here; nothing else may repeat a default.
 *
 * Include it after defining
 *   YZ_PARAM(ID, name, TYPE, def, dev_def, min, max, extra, doc)
 *   YZ_GROUP(title)                     (optional; empty when undefined)
 * where
 *   ID       upper-case suffix of the id constant YZ_P_<ID>;
 *   name     the parameter name as written in yizhan.conf (a bare token);
 *   TYPE     STR, INT, SIZE, TIME, BOOL, LIST or ENUM;
 *   def      default value as yizhan.conf text (may use $name expansion);
 *   dev_def  default in dev mode, or NULL when it is the same as def;
 *   min, max bounds for INT (plain), SIZE (bytes) and TIME (milliseconds);
 *            ignored (0, 0) for the other types;
 *   extra    TIME: the unit of a plain number ("ms", "s", "m", "h", "d");
 *            ENUM: the allowed values separated by '|'; otherwise NULL;
 *   doc      one sentence for the reference documentation.
 * The file undefines both macros at its end, so it can be included again.
 *
 * Never: put logic here, or give a default that fails its own validation
 * (the unit tests load every default in both modes).
 */

#ifndef YZ_GROUP
#define YZ_GROUP(title)
#endif

/* Helpers for bounds, in the internal units (bytes, milliseconds). */
#ifndef YZ_CFG_KIB
#define YZ_CFG_KIB(n) ((long long)(n) * 1024LL)
#define YZ_CFG_MIB(n) ((long long)(n) * 1024LL * 1024LL)
#define YZ_CFG_GIB(n) ((long long)(n) * 1024LL * 1024LL * 1024LL)
#define YZ_CFG_SEC(n) ((long long)(n) * 1000LL)
#define YZ_CFG_MIN(n) ((long long)(n) * 60LL * 1000LL)
#define YZ_CFG_HOUR(n) ((long long)(n) * 3600LL * 1000LL)
#define YZ_CFG_DAY(n) ((long long)(n) * 86400LL * 1000LL)
#endif

YZ_GROUP("General")
YZ_PARAM(MYHOSTNAME, myhostname, STR, "", NULL, 0, 0, NULL,
	 "The fully-qualified host name of this mail system, used in the SMTP greeting, Received headers and bounces; empty means the system host name.")
YZ_PARAM(STATE_DIRECTORY, state_directory, STR, "/var/lib/yizhan", NULL, 0, 0, NULL,
	 "The directory under which yizhan keeps its state: queue, mailboxes, directory database, certificates and run files.")
YZ_PARAM(RUN_DIRECTORY, run_directory, STR, "$state_directory/run", NULL, 0, 0, NULL,
	 "The directory for the master's pid file and control socket.")
YZ_PARAM(QUEUE_DIRECTORY, queue_directory, STR, "$state_directory/queue", NULL, 0, 0, NULL,
	 "The spool directory of the mail queue, owned by the queue role.")
YZ_PARAM(MAILDIR_ROOT, maildir_root, STR, "$state_directory/mail", NULL, 0, 0, NULL,
	 "The root of the mail store: each account's Maildir++ lives in `<maildir_root>/<domain>/<user>/`.")
YZ_PARAM(DIRECTORY_BACKEND, directory_backend, ENUM, "sqlite", NULL, 0, 0, "sqlite|postgresql",
	 "Where domains, accounts and aliases are stored: an embedded SQLite file, or a PostgreSQL server shared by several nodes.")
YZ_PARAM(DIRECTORY_SQLITE_PATH, directory_sqlite_path, STR, "$state_directory/data/directory.db", NULL, 0, 0, NULL,
	 "The SQLite database file of the directory when directory_backend is sqlite.")
YZ_PARAM(YIZHAN_USER, yizhan_user, STR, "yizhan", NULL, 0, 0, NULL,
	 "The unprivileged system user that the smtpd, queue, directory and admin roles run as (ignored in dev mode).")
YZ_PARAM(VMAIL_USER, vmail_user, STR, "vmail", NULL, 0, 0, NULL,
	 "The system user that owns the mail store and runs the mailbox role (ignored in dev mode).")
YZ_PARAM(SYSLOG_FACILITY, syslog_facility, ENUM, "mail", NULL, 0, 0,
	 "mail|local0|local1|local2|local3|local4|local5|local6|local7",
	 "The syslog facility of the log lines when yizhan runs as a daemon.")
YZ_PARAM(LOG_LEVEL, log_level, ENUM, "info", NULL, 0, 0, "debug|info|warning|error",
	 "The least severe log level that is written.")
YZ_PARAM(INET_INTERFACES, inet_interfaces, LIST, "all", "loopback-only", 0, 0, NULL,
	 "The addresses the listeners bind to: all, loopback-only, or a list of IPv4 and IPv6 addresses.")
YZ_PARAM(TLS_CERT_FILE, tls_cert_file, STR, "$state_directory/tls/cert.pem", NULL, 0, 0, NULL,
	 "The PEM file with the server certificate and its chain, offered by every TLS listener and STARTTLS.")
YZ_PARAM(TLS_KEY_FILE, tls_key_file, STR, "$state_directory/tls/key.pem", NULL, 0, 0, NULL,
	 "The PEM file with the private key of tls_cert_file.")
YZ_PARAM(TLS_MIN_PROTOCOL, tls_min_protocol, ENUM, "TLSv1.2", NULL, 0, 0, "TLSv1.2|TLSv1.3",
	 "The oldest TLS protocol version that servers and the outbound client accept.")

YZ_GROUP("Master")
YZ_PARAM(MASTER_RESTART_DELAY_MIN, master_restart_delay_min, TIME, "1s", NULL,
	 0, YZ_CFG_HOUR(1), "s",
	 "The delay before the master restarts a role that died; it doubles with each consecutive failure.")
YZ_PARAM(MASTER_RESTART_DELAY_MAX, master_restart_delay_max, TIME, "60s", NULL,
	 YZ_CFG_SEC(1), YZ_CFG_HOUR(1), "s",
	 "The longest delay between restarts of a role that keeps dying.")
YZ_PARAM(MASTER_SHUTDOWN_TIMEOUT, master_shutdown_timeout, TIME, "30s", NULL,
	 0, YZ_CFG_HOUR(1), "s",
	 "How long open sessions may finish after stop or reload before their processes are ended.")
YZ_PARAM(PROCESS_FD_LIMIT, process_fd_limit, INT, "65536", NULL, 64, 1048576, NULL,
	 "The limit on open file descriptors that the master sets for itself and every role.")

YZ_GROUP("Listeners")
YZ_PARAM(SMTP_PORT, smtp_port, INT, "25", "2525", 0, 65535, NULL,
	 "The TCP port of the SMTP server for mail from other servers; 0 disables the listener.")
YZ_PARAM(SUBMISSION_PORT, submission_port, INT, "587", "5870", 0, 65535, NULL,
	 "The TCP port of message submission with STARTTLS and authentication (RFC 6409); 0 disables the listener.")
YZ_PARAM(SUBMISSIONS_PORT, submissions_port, INT, "465", "4650", 0, 65535, NULL,
	 "The TCP port of message submission over implicit TLS (RFC 8314); 0 disables the listener.")
YZ_PARAM(IMAP_PORT, imap_port, INT, "143", "1430", 0, 65535, NULL,
	 "The TCP port of the IMAP server with STARTTLS; 0 disables the listener.")
YZ_PARAM(IMAPS_PORT, imaps_port, INT, "993", "9930", 0, 65535, NULL,
	 "The TCP port of the IMAP server over implicit TLS; 0 disables the listener.")
YZ_PARAM(POP3_PORT, pop3_port, INT, "110", "1100", 0, 65535, NULL,
	 "The TCP port of the POP3 server with STLS; 0 disables the listener.")
YZ_PARAM(POP3S_PORT, pop3s_port, INT, "995", "9950", 0, 65535, NULL,
	 "The TCP port of the POP3 server over implicit TLS; 0 disables the listener.")
YZ_PARAM(ADMIN_PORT, admin_port, INT, "8098", "8098", 0, 65535, NULL,
	 "The TCP port of the HTTPS administration console, JSON API and metrics; 0 disables the listener.")

YZ_GROUP("Directory and authentication")
YZ_PARAM(PLUS_SEPARATOR, plus_separator, STR, "+", NULL, 0, 0, NULL,
	 "The separator of address extensions, so that user+tag@domain is delivered to user@domain; empty turns extensions off.")
YZ_PARAM(DEFAULT_QUOTA, default_quota, SIZE, "0", NULL, 0, YZ_CFG_GIB(1048576), NULL,
	 "The mailbox quota of accounts that have none of their own; 0 means unlimited.")
YZ_PARAM(ALIAS_MAX_DEPTH, alias_max_depth, INT, "8", NULL, 1, 100, NULL,
	 "How many levels of aliases pointing to aliases are followed before the expansion is refused as a loop.")
YZ_PARAM(ALIAS_MAX_EXPANSION, alias_max_expansion, INT, "1000", NULL, 1, 1000000, NULL,
	 "The largest number of final recipients one address may expand to through aliases and lists.")
YZ_PARAM(AUTH_CACHE_TTL, auth_cache_ttl, TIME, "1h", NULL, 0, YZ_CFG_DAY(7), "s",
	 "How long a successful authentication stays cached by the directory role; 0 disables the cache.")
YZ_PARAM(AUTH_CACHE_SIZE, auth_cache_size, INT, "10000", NULL, 0, 10000000, NULL,
	 "The largest number of entries in the authentication cache.")
YZ_PARAM(AUTH_FAILURE_DELAY, auth_failure_delay, TIME, "2s", NULL, 0, YZ_CFG_MIN(1), "s",
	 "The delay before answering a failed authentication; it doubles with each further failure from the same client.")
YZ_PARAM(AUTH_FAILURE_DELAY_MAX, auth_failure_delay_max, TIME, "15s", NULL, 0, YZ_CFG_MIN(10), "s",
	 "The longest delay before answering a failed authentication.")
YZ_PARAM(AUTH_ARGON2_T_COST, auth_argon2_t_cost, INT, "3", NULL, 1, 100, NULL,
	 "The argon2id time cost (iterations) of new password hashes.")
YZ_PARAM(AUTH_ARGON2_M_COST, auth_argon2_m_cost, INT, "65536", NULL, 8, 4194304, NULL,
	 "The argon2id memory cost of new password hashes, in KiB.")
YZ_PARAM(AUTH_ARGON2_PARALLELISM, auth_argon2_parallelism, INT, "1", NULL, 1, 64, NULL,
	 "The argon2id parallelism (lanes) of new password hashes.")

YZ_GROUP("SMTP server")
YZ_PARAM(SMTPD_BANNER, smtpd_banner, STR, "$myhostname ESMTP yizhan", NULL, 0, 0, NULL,
	 "The text after the 220 code of the SMTP greeting; it must start with the host name.")
YZ_PARAM(MYNETWORKS, mynetworks, LIST, "127.0.0.0/8 [::1]/128", NULL, 0, 0, NULL,
	 "The client networks (CIDR, IPv6 in brackets allowed) that may relay without authentication.")
YZ_PARAM(SMTPD_COMMAND_LINE_LIMIT, smtpd_command_line_limit, SIZE, "512", NULL,
	 512, YZ_CFG_KIB(64), NULL,
	 "The longest SMTP command line accepted, including CRLF (RFC 5321 requires at least 512).")
YZ_PARAM(SMTPD_TEXT_LINE_LIMIT, smtpd_text_line_limit, SIZE, "2048", NULL,
	 1000, YZ_CFG_MIB(1), NULL,
	 "The longest line of message text accepted in DATA, including CRLF (RFC 5321 requires at least 1000).")
YZ_PARAM(MESSAGE_SIZE_LIMIT, message_size_limit, SIZE, "50M", NULL,
	 YZ_CFG_KIB(1), YZ_CFG_GIB(4), NULL,
	 "The largest message accepted, announced with the SIZE extension.")
YZ_PARAM(SMTPD_RECIPIENT_LIMIT, smtpd_recipient_limit, INT, "1000", NULL, 1, 100000, NULL,
	 "The largest number of recipients accepted in one message transaction.")
YZ_PARAM(SMTPD_CONNECTION_LIMIT, smtpd_connection_limit, INT, "2000", NULL, 1, 1000000, NULL,
	 "The largest number of simultaneous SMTP sessions over all clients.")
YZ_PARAM(SMTPD_CLIENT_CONNECTION_COUNT_LIMIT, smtpd_client_connection_count_limit, INT, "50", NULL,
	 0, 1000000, NULL,
	 "The largest number of simultaneous SMTP sessions from one client IP address; 0 means no limit.")
YZ_PARAM(SMTPD_HARD_ERROR_LIMIT, smtpd_hard_error_limit, INT, "20", NULL, 1, 1000, NULL,
	 "The number of errors in one session after which the server disconnects.")
YZ_PARAM(SMTPD_SOFT_ERROR_LIMIT, smtpd_soft_error_limit, INT, "10", NULL, 1, 1000, NULL,
	 "The number of errors in one session after which each further reply is delayed by smtpd_error_sleep_time.")
YZ_PARAM(SMTPD_ERROR_SLEEP_TIME, smtpd_error_sleep_time, TIME, "1s", NULL, 0, YZ_CFG_MIN(5), "s",
	 "The delay before each error reply once a session passed smtpd_soft_error_limit.")
YZ_PARAM(SMTPD_TIMEOUT, smtpd_timeout, TIME, "300s", NULL, YZ_CFG_SEC(1), YZ_CFG_HOUR(1), "s",
	 "How long the server waits for the next command from a client before disconnecting.")
YZ_PARAM(SMTPD_DATA_TIMEOUT, smtpd_data_timeout, TIME, "180s", NULL, YZ_CFG_SEC(1), YZ_CFG_HOUR(1), "s",
	 "How long the server waits for each block of message data during DATA or BDAT.")
YZ_PARAM(SMTPD_GREET_PAUSE, smtpd_greet_pause, TIME, "0", NULL, 0, YZ_CFG_MIN(1), "s",
	 "A pause before the greeting; a client that talks before it is refused as an early talker. 0 disables the pause.")
YZ_PARAM(HOPCOUNT_LIMIT, hopcount_limit, INT, "50", NULL, 1, 1000, NULL,
	 "The largest number of Received headers a message may carry before it is refused as a mail loop.")
YZ_PARAM(SMTPD_AUTH_OVER_PLAINTEXT, smtpd_auth_over_plaintext, BOOL, "no", NULL, 0, 0, NULL,
	 "Whether SMTP AUTH is offered on connections without TLS.")
YZ_PARAM(SMTPD_SENDER_LOGIN_MATCH, smtpd_sender_login_match, BOOL, "yes", NULL, 0, 0, NULL,
	 "Whether an authenticated client may only use envelope senders that belong to its account.")
YZ_PARAM(SMTPD_OVER_QUOTA_PERMANENT, smtpd_over_quota_permanent, BOOL, "no", NULL, 0, 0, NULL,
	 "Whether a recipient over quota is refused permanently (552 5.2.2) instead of temporarily (452 4.2.2).")
YZ_PARAM(SMTPD_MAX_AUTH_FAILURES, smtpd_max_auth_failures, INT, "3", NULL, 1, 100, NULL,
	 "The number of failed AUTH attempts in one session after which the server disconnects.")
YZ_PARAM(SMTPUTF8_ENABLE, smtputf8_enable, BOOL, "yes", NULL, 0, 0, NULL,
	 "Whether the SMTPUTF8 extension (internationalised addresses, RFC 6531) is offered.")

YZ_GROUP("Queue")
YZ_PARAM(QUEUE_MINFREE_MULTIPLE, queue_minfree_multiple, INT, "2", NULL, 0, 100, NULL,
	 "MAIL is refused with 452 4.3.1 while the queue's free disk space is below this multiple of message_size_limit; 0 turns the check off.")
YZ_PARAM(QUEUE_GROUP_COMMIT_WINDOW, queue_group_commit_window, TIME, "1ms", NULL, 0, 100, "ms",
	 "How long the queue waits to gather concurrent messages into one fsync (group commit).")
YZ_PARAM(MINIMAL_BACKOFF_TIME, minimal_backoff_time, TIME, "300s", NULL, YZ_CFG_SEC(1), YZ_CFG_DAY(1), "s",
	 "The shortest delay before a deferred delivery is tried again; it doubles with each attempt.")
YZ_PARAM(MAXIMAL_BACKOFF_TIME, maximal_backoff_time, TIME, "3600s", NULL, YZ_CFG_SEC(1), YZ_CFG_DAY(7), "s",
	 "The longest delay between two attempts of a deferred delivery.")
YZ_PARAM(DELAY_WARNING_TIME, delay_warning_time, TIME, "4h", NULL, 0, YZ_CFG_DAY(100), "h",
	 "After how long the sender of a still undelivered message is sent a delay notice; 0 sends none.")
YZ_PARAM(MAXIMAL_QUEUE_LIFETIME, maximal_queue_lifetime, TIME, "5d", NULL, 0, YZ_CFG_DAY(100), "d",
	 "How long a message is retried before it is returned to the sender as undeliverable.")
YZ_PARAM(BOUNCE_QUEUE_LIFETIME, bounce_queue_lifetime, TIME, "5d", NULL, 0, YZ_CFG_DAY(100), "d",
	 "How long a bounce message (null sender) is retried before it is given up.")
YZ_PARAM(QUEUE_RUN_DELAY, queue_run_delay, TIME, "300s", NULL, YZ_CFG_SEC(1), YZ_CFG_DAY(1), "s",
	 "How often the queue scans deferred messages for those due for another attempt.")
YZ_PARAM(LOCAL_DELIVERY_CONCURRENCY, local_delivery_concurrency, INT, "100", NULL, 1, 10000, NULL,
	 "The largest number of simultaneous local deliveries to the mail store.")
YZ_PARAM(DEFAULT_DESTINATION_CONCURRENCY_LIMIT, default_destination_concurrency_limit, INT, "20", NULL,
	 1, 10000, NULL,
	 "The largest number of simultaneous outbound SMTP connections to one destination domain.")

YZ_GROUP("Mailboxes, POP3 and IMAP")
YZ_PARAM(MAILDIR_FSYNC_BATCH, maildir_fsync_batch, BOOL, "yes", NULL, 0, 0, NULL,
	 "Whether local deliveries that arrive together share one fsync of the mail store (as queue group commit).")
YZ_PARAM(POP3_COMMAND_LINE_LIMIT, pop3_command_line_limit, SIZE, "512", NULL, 255, YZ_CFG_KIB(64), NULL,
	 "The longest POP3 command line accepted, including CRLF (RFC 1939 requires at least 255).")
YZ_PARAM(POP3_IDLE_TIMEOUT, pop3_idle_timeout, TIME, "600s", NULL, YZ_CFG_SEC(10), YZ_CFG_DAY(1), "s",
	 "How long a POP3 session may stay idle before it is closed (RFC 1939 asks for at least 10 minutes).")
YZ_PARAM(POP3_PLAINTEXT_AUTH, pop3_plaintext_auth, BOOL, "no", NULL, 0, 0, NULL,
	 "Whether USER/PASS and AUTH are allowed on POP3 connections without TLS.")
YZ_PARAM(POP3_MAX_AUTH_FAILURES, pop3_max_auth_failures, INT, "3", NULL, 1, 100, NULL,
	 "The number of failed logins in one POP3 session after which the server disconnects.")
YZ_PARAM(IMAP_COMMAND_LINE_LIMIT, imap_command_line_limit, SIZE, "65536", NULL,
	 YZ_CFG_KIB(1), YZ_CFG_MIB(16), NULL,
	 "The longest IMAP command line accepted, literals excluded (RFC 7162 recommends at least 8192).")
YZ_PARAM(IMAP_LITERAL_LIMIT, imap_literal_limit, SIZE, "50M", NULL, YZ_CFG_KIB(1), YZ_CFG_GIB(4), NULL,
	 "The largest literal accepted in an IMAP command, which bounds the size of an APPEND.")
YZ_PARAM(IMAP_IDLE_TIMEOUT, imap_idle_timeout, TIME, "30m", NULL, YZ_CFG_SEC(10), YZ_CFG_DAY(1), "s",
	 "How long an IMAP session may stay idle (IDLE included) before it is closed.")
YZ_PARAM(IMAP_PLAINTEXT_AUTH, imap_plaintext_auth, BOOL, "no", NULL, 0, 0, NULL,
	 "Whether LOGIN and AUTHENTICATE are allowed on IMAP connections without TLS.")
YZ_PARAM(MAILBOX_SESSION_LIMIT, mailbox_session_limit, INT, "10000", NULL, 1, 1000000, NULL,
	 "The largest number of simultaneous IMAP and POP3 sessions.")

#undef YZ_PARAM
#undef YZ_GROUP
