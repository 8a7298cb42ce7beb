/*
 * smtpd.h: the smtpd role (SMTP on 25, submission on 587, submissions on
 * 465): the entry point the CLI calls for `yizhan role smtpd`.
 *
 * Guarantees: returns only when the role has stopped (graceful stop
 * finished, or a fatal start-up error); every message answered 250 after
 * DATA/BDAT is committed in the queue directory.
 * Never: read another role's data, open a socket to another role itself.
 */
#ifndef YZ_SMTPD_H
#define YZ_SMTPD_H

struct yz_config;

/* Create the YZ_ROLE_SMTPD service, serve until stopped; the exit status. */
int smtpd_role_run(struct yz_config *cfg);

#endif
