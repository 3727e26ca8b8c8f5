/*
 * smtp_client.h: one outbound SMTP or LMTP transaction on a connected
 * socket (smtp_client.c). Blocking with poll() timeouts: it runs in a
 * delivery worker thread, never in the event loop.
 */
#ifndef TEMPOMX_SMTP_CLIENT_H
#define TEMPOMX_SMTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum tls_policy { TLS_POLICY_NONE = 0, TLS_POLICY_MAY, TLS_POLICY_ENCRYPT, TLS_POLICY_VERIFY };

struct smtp_opts {
	int lmtp;            /* LHLO, one reply per recipient after the dot (RFC 2033) */
	const char *helo;    /* our name */
	int command_timeout; /* seconds: greeting, EHLO, MAIL, RCPT, DATA (RFC 5321 4.5.3.2) */
	int data_timeout;    /* seconds: the reply to the final dot */
	int tls_policy;      /* enum tls_policy */
	const char *tls_ca_file;
	const char *peer_name; /* for certificate checks and logs */
};

struct smtp_message {
	const char *sender; /* "" for the null sender */
	const char *const *rcpts;
	size_t nrcpt;
	int fd; /* the spool file */
	off_t body_off;
	uint64_t size;
	int eightbit; /* BODY=8BITMIME */
};

/* The outcome for one recipient: code 0 = not decided. */
struct smtp_result {
	int code;
	char reply[512];
};

enum smtp_outcome {
	SMTP_DONE = 0, /* every recipient has a code */
	SMTP_NEXT_HOST /* this host failed as a whole: try the next MX; reply in err */
};

/* An open SMTP/LMTP session that can carry several transactions. */
struct smtp_session;

/* Run one transaction. With *sessp NULL, a new session is opened on fd
 * (connected; from then on owned by the session): greeting, EHLO (HELO
 * fallback), STARTTLS per tls_policy. With *sessp set, that session is
 * reused and fd is ignored. Returns an enum smtp_outcome; with
 * SMTP_NEXT_HOST, *code is the code to use if no other host is left (4xx
 * for network trouble, 5xx for a permanent refusal) and err says why.
 * tls receives the TLS version and cipher when STARTTLS is in use. On
 * return *sessp is the session, still open, if keep was set and it is
 * healthy; otherwise NULL (QUIT sent, socket closed). */
int smtp_transaction(struct smtp_session **sessp, int fd, int keep, const struct smtp_opts *o,
                     const struct smtp_message *m, struct smtp_result *res, int *code, char *err,
                     size_t errlen, char *tls, size_t tlslen);
/* QUIT (if the connection still works) and free. NULL is harmless. */
void smtp_session_close(struct smtp_session *s);

/* Append the dot-stuffed form of len octets of a message to out (RFC 5321
 * 4.5.2: a line that starts with "." gets another "."). *bol is 1 at the
 * start of a line and is kept across calls. Returns the octets written;
 * out must hold 2 * len. */
size_t smtp_dotstuff(const char *in, size_t len, char *out, int *bol);

#endif
