/*
 * queue_id.c: queue IDs: 12 characters of Crockford base32 (ASCII-ordered
 * alphabet, so string order is time order) holding 52 bits of microseconds
 * since the epoch and 8 bits of the pid.
 *
 * Guarantees: IDs made by one process strictly increase (a second ID in the
 * same microsecond borrows the next microsecond); queue_id_valid() accepts
 * exactly the strings queue_id_new() can make, so a valid ID is a safe file
 * name. Must never: return an ID that does not pass queue_id_valid().
 * Not thread-safe (one writer thread per process, as every role is).
 */
#include "store/queue/queue_store.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char qid_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#define QID_TIME_BITS 52
#define QID_PID_BITS 8

static uint64_t qid_last_us;
static pid_t qid_last_pid;
static pid_t qid_pid;         /* cached getpid(), 0 = ask */
static bool qid_atfork_set;
/* The smtpd's committer thread makes segment names while the loop makes
 * queue IDs: one sequence, so one lock. */
static pthread_mutex_t qid_mu = PTHREAD_MUTEX_INITIALIZER;

/* Microseconds since the epoch from the real-time clock. */
static uint64_t qid_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* In the child of a fork(): take the new pid at the next ID. */
static void qid_atfork_child(void)
{
	qid_pid = 0;
}

/* Our pid, asked of the kernel once per process (glibc does not cache it). */
static pid_t qid_getpid(void)
{
	if (qid_pid == 0) {
		if (!qid_atfork_set) {
			(void)pthread_atfork(NULL, NULL, qid_atfork_child);
			qid_atfork_set = true;
		}
		qid_pid = getpid();
	}
	return qid_pid;
}

void queue_id_new(char out[QUEUE_ID_MAX])
{
	pthread_mutex_lock(&qid_mu);
	pid_t pid = qid_getpid();
	uint64_t us = qid_now_us() & (((uint64_t)1 << QID_TIME_BITS) - 1);
	/* After a fork the child starts its own sequence (it has another pid). */
	if (pid == qid_last_pid && us <= qid_last_us)
		us = qid_last_us + 1;
	qid_last_us = us;
	qid_last_pid = pid;
	pthread_mutex_unlock(&qid_mu);
	uint64_t v = (us << QID_PID_BITS) | ((uint64_t)pid & ((1u << QID_PID_BITS) - 1));
	for (int i = QUEUE_ID_LEN - 1; i >= 0; i--) {
		out[i] = qid_alphabet[v & 31];
		v >>= 5;
	}
	out[QUEUE_ID_LEN] = '\0';
}

bool queue_id_valid(const char *s)
{
	if (s == NULL)
		return false;
	for (int i = 0; i < QUEUE_ID_LEN; i++) {
		if (s[i] == '\0' || strchr(qid_alphabet, s[i]) == NULL)
			return false;
	}
	return s[QUEUE_ID_LEN] == '\0';
}
