/*
 * smtpd_cmd.c: the SMTP command table: for each verb, the states where it
 * may run, its counter for the disconnect log line, and its handler
 * (OpenSMTPD commands[], qmail smtpcommands[]).
 *
 * Guarantees: a handler runs only in a state the table allows; every other
 * case gets the sequencing error RFC 5321 4.3.2 asks for (503 5.5.1) with a
 * text saying what to send first.
 * Never: run a command in a state the table does not list.
 */
#include "smtpd/smtpd_private.h"

#include <stddef.h>

#define ANY SMTPD_S_ANY
#define TXN (SMTPD_SB(SMTPD_S_MAIL) | SMTPD_SB(SMTPD_S_RCPT) | SMTPD_SB(SMTPD_S_BDAT))

static const struct smtpd_cmd smtpd_commands[] = {
	{ SMTP_HELO, "helo", ANY, SMTPD_C_HELO, smtpd_cmd_helo },
	{ SMTP_EHLO, "ehlo", ANY, SMTPD_C_EHLO, smtpd_cmd_ehlo },
	{ SMTP_STARTTLS, "starttls", SMTPD_SB(SMTPD_S_INIT) | SMTPD_SB(SMTPD_S_READY),
	  SMTPD_C_STARTTLS, smtpd_cmd_starttls },
	{ SMTP_AUTH, "auth", SMTPD_SB(SMTPD_S_READY), SMTPD_C_AUTH, smtpd_cmd_auth },
	{ SMTP_MAIL, "mail", SMTPD_SB(SMTPD_S_READY), SMTPD_C_MAIL, smtpd_cmd_mail },
	{ SMTP_RCPT, "rcpt", SMTPD_SB(SMTPD_S_MAIL) | SMTPD_SB(SMTPD_S_RCPT), SMTPD_C_RCPT,
	  smtpd_cmd_rcpt },
	{ SMTP_DATA, "data", SMTPD_SB(SMTPD_S_RCPT), SMTPD_C_DATA, smtpd_cmd_data },
	/* BDAT is let through in every state: a refused chunk must still be
	 * read and discarded, so the handler answers the sequencing error
	 * itself after swallowing the bytes (RFC 3030 3). */
	{ SMTP_BDAT, "bdat", ANY, SMTPD_C_BDAT, smtpd_cmd_bdat },
	{ SMTP_RSET, "rset", ANY, SMTPD_C_RSET, smtpd_cmd_rset },
	{ SMTP_NOOP, "noop", ANY, SMTPD_C_NOOP, smtpd_cmd_noop },
	{ SMTP_VRFY, "vrfy", ANY, SMTPD_C_VRFY, smtpd_cmd_vrfy },
	{ SMTP_EXPN, "expn", ANY, SMTPD_C_EXPN, smtpd_cmd_vrfy },
	{ SMTP_HELP, "help", ANY, SMTPD_C_HELP, smtpd_cmd_help },
	{ SMTP_QUIT, "quit", ANY, SMTPD_C_QUIT, smtpd_cmd_quit },
};

/* The table entry of a verb, NULL for SMTP_UNKNOWN. */
const struct smtpd_cmd *smtpd_cmd_find(enum smtp_verb verb)
{
	size_t i;

	for (i = 0; i < sizeof(smtpd_commands) / sizeof(smtpd_commands[0]); i++) {
		if (smtpd_commands[i].verb == verb)
			return &smtpd_commands[i];
	}
	return NULL;
}

/* May the command run in this state? 0, or -1 with the reply to send. */
int smtpd_cmd_check(const struct smtpd_cmd *cmd, enum smtpd_state state, bool authenticated,
		    int *code_r, const char **enh_r, const char **text_r)
{
	*code_r = 503;
	*enh_r = "5.5.1";
	if ((cmd->states & SMTPD_SB(state)) != 0) {
		if (cmd->verb == SMTP_AUTH && authenticated) {
			*text_r = "Error: already authenticated";
			return -1;
		}
		return 0;
	}
	switch (cmd->verb) {
	case SMTP_STARTTLS:
	case SMTP_AUTH:
		*text_r = state == SMTPD_S_INIT ? "Error: send EHLO first"
						 : "Error: MAIL transaction in progress";
		break;
	case SMTP_MAIL:
		*text_r = state == SMTPD_S_INIT ? "Error: send HELO/EHLO first"
						 : "Error: nested MAIL command";
		break;
	case SMTP_RCPT:
		*text_r = "Error: need MAIL command";
		break;
	case SMTP_DATA:
		if (state == SMTPD_S_MAIL)
			*text_r = "Error: need RCPT command";
		else if (state == SMTPD_S_BDAT)
			*text_r = "Error: DATA after BDAT is not allowed";
		else
			*text_r = "Error: need MAIL command";
		break;
	default:
		*text_r = "Error: command not allowed now";
		break;
	}
	return -1;
}
