/*
 * mailbox.h: the mailbox role: owns the mail store (runs as vmail), takes
 * local deliveries from the queue (MBOX_DELIVER), answers quota questions
 * (MBOX_QUOTA), and hosts the POP3 and IMAP front-ends.
 */
#ifndef YZ_MAILBOX_H
#define YZ_MAILBOX_H

#include "lib/config.h"

/* Entry of `yizhan role mailbox`. */
int mailbox_role_run(struct yz_config *cfg);

#endif
